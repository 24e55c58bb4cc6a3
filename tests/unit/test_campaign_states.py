"""Every allowed and every refused campaign transition, checked against the issue's list, not the table."""

from __future__ import annotations

import itertools

import pytest

from libs.common.campaign_states import (
    EDITABLE,
    CampaignNotEditable,
    CampaignState,
    after_content_change,
    after_run,
    approve,
    available_actions,
    can_transition,
    ensure_editable,
    ensure_schedulable,
    next_states,
    reject,
    resume,
    schedule,
    send_now,
    submit,
    transition,
)
from libs.common.errors import InvalidTransition, PermanentError

S = CampaignState

# Written out from issue 6, independently of TRANSITIONS: a change to the table must change this too.
ALLOWED = {
    (S.DRAFT, S.SCHEDULED),
    (S.DRAFT, S.SENDING),  # send now (issue 28: the page offers Pause at once)
    (S.SCHEDULED, S.SENDING),
    (S.SENDING, S.COMPLETED),
    (S.SENDING, S.PAUSED),
    (S.PAUSED, S.SENDING),
    (S.SENDING, S.SCHEDULED),  # a recurring campaign between runs
    # A draft is deleted, not cancelled (issue 28).
    *((state, S.CANCELLED) for state in (S.SCHEDULED, S.SENDING, S.PAUSED)),
    # "Not sent" (issue 28): the run ended without sending; fixed, it is scheduled or sent again.
    *((state, S.FAILED) for state in (S.SCHEDULED, S.SENDING, S.PAUSED)),
    (S.FAILED, S.SCHEDULED),
    (S.FAILED, S.SENDING),
    (S.FAILED, S.ARCHIVED),
    (S.COMPLETED, S.ARCHIVED),
    (S.CANCELLED, S.ARCHIVED),
    # Approval (issue 27): draft -> in review -> approved -> scheduled or sending; rejected back to draft;
    # a change to the approved wording, audience or sender (a one-time or a recurring campaign) back to review.
    (S.DRAFT, S.IN_REVIEW),
    (S.IN_REVIEW, S.APPROVED),
    (S.IN_REVIEW, S.DRAFT),
    (S.APPROVED, S.SCHEDULED),
    (S.APPROVED, S.SENDING),
    *((state, S.IN_REVIEW) for state in (S.APPROVED, S.SCHEDULED, S.FAILED)),
    (S.SENDING, S.IN_REVIEW),  # the scheduler refused a run whose content is not what was approved
}
EVERY_PAIR = list(itertools.product(CampaignState, CampaignState))


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions_return_the_target(current: CampaignState, target: CampaignState) -> None:
    assert transition(current, target) is target
    assert transition(current.value, target.value) is target  # as read from the database
    assert can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [p for p in EVERY_PAIR if p not in ALLOWED])
def test_every_other_transition_is_refused_naming_both_states(current: CampaignState, target: CampaignState) -> None:
    with pytest.raises(InvalidTransition) as refused:
        transition(current, target)
    assert refused.value.current == current.value and refused.value.requested == target.value
    assert refused.value.code == "invalid_transition"
    assert str(refused.value) == f"cannot go from {current} to {target}"
    assert isinstance(refused.value, PermanentError)
    assert not can_transition(current, target)


def test_archived_is_final_and_only_a_rejected_review_returns_to_draft() -> None:
    assert next_states(S.ARCHIVED) == []
    assert [state for state in CampaignState if can_transition(state, S.DRAFT)] == [S.IN_REVIEW]


def test_next_states_lists_what_the_api_offers() -> None:
    assert next_states(S.SENDING) == [S.IN_REVIEW, S.SCHEDULED, S.PAUSED, S.COMPLETED, S.CANCELLED, S.FAILED]
    assert next_states("draft") == [S.IN_REVIEW, S.SCHEDULED, S.SENDING]
    assert next_states(S.IN_REVIEW) == [S.DRAFT, S.APPROVED]


@pytest.mark.parametrize("state", list(CampaignState))
def test_editing_is_allowed_before_sending_while_paused_and_not_sent_only(state: CampaignState) -> None:
    if state in (S.DRAFT, S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.PAUSED, S.FAILED):
        ensure_editable(state)
        return
    with pytest.raises(CampaignNotEditable) as refused:
        ensure_editable(state)
    assert isinstance(refused.value, InvalidTransition) and refused.value.current == state.value
    assert refused.value.code == "campaign_not_editable"
    assert str(refused.value) == (f"a {state} campaign cannot be edited; "
                                  "only approved, draft, failed, in_review, paused, scheduled campaigns can")
    assert EDITABLE == {S.DRAFT, S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.PAUSED, S.FAILED}


@pytest.mark.parametrize("state", list(CampaignState))
def test_a_schedule_is_set_or_replaced_only_before_sending_or_after_nothing_was_sent(state: CampaignState) -> None:
    if state in (S.DRAFT, S.APPROVED, S.SCHEDULED, S.FAILED):
        ensure_schedulable(state, "sent now")
        return
    with pytest.raises(CampaignNotEditable, match=f"a {state} campaign cannot be sent now"):
        ensure_schedulable(state, "sent now")


def test_a_finished_run_completes_the_campaign_or_waits_for_the_next_occurrence() -> None:
    assert after_run(S.SENDING, sent_anything=True, has_more_occurrences=True) is S.SCHEDULED
    assert after_run(S.SENDING, sent_anything=True, has_more_occurrences=False) is S.COMPLETED


def test_a_run_that_sent_nothing_leaves_the_campaign_not_sent_unless_more_runs_are_due() -> None:
    assert after_run(S.SENDING, sent_anything=False, has_more_occurrences=False) is S.FAILED
    assert after_run(S.SENDING, sent_anything=False, has_more_occurrences=True) is S.SCHEDULED
    assert after_run(S.SCHEDULED, sent_anything=False, has_more_occurrences=False) is S.FAILED  # missed
    assert after_run(S.PAUSED, sent_anything=False, has_more_occurrences=False) is S.FAILED  # refused while paused


def test_a_campaign_stays_while_another_run_is_open_or_the_table_allows_no_move() -> None:
    assert after_run(S.SENDING, sent_anything=True, has_more_occurrences=False, other_runs_open=True) is None
    assert after_run(S.SCHEDULED, sent_anything=False, has_more_occurrences=True) is None  # already there
    assert after_run(S.CANCELLED, sent_anything=False, has_more_occurrences=False) is None
    assert after_run(S.PAUSED, sent_anything=True, has_more_occurrences=True) is None  # stays paused


def test_an_unknown_state_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError):
        transition("sent", "archived")


@pytest.mark.parametrize("state", list(CampaignState))
def test_scheduling_moves_a_draft_and_keeps_a_scheduled_campaign(state: CampaignState) -> None:
    if state in (S.DRAFT, S.APPROVED, S.SCHEDULED, S.FAILED):
        assert schedule(state) is S.SCHEDULED
    else:
        with pytest.raises(CampaignNotEditable):
            schedule(state)


@pytest.mark.parametrize("state", list(CampaignState))
def test_send_now_makes_the_campaign_sending_at_once(state: CampaignState) -> None:
    if state in (S.DRAFT, S.APPROVED, S.SCHEDULED, S.FAILED):
        assert send_now(state) is S.SENDING
    else:
        with pytest.raises(CampaignNotEditable, match=f"a {state} campaign cannot be sent now"):
            send_now(state)


@pytest.mark.parametrize("state", list(CampaignState))
def test_only_a_paused_campaign_resumes(state: CampaignState) -> None:
    if state is S.PAUSED:
        assert resume(state) is S.SENDING
        return
    with pytest.raises(InvalidTransition) as refused:
        resume(state)  # scheduled -> sending is in the table, but it is the scheduler's move
    assert (refused.value.current, refused.value.requested) == (state.value, "sending")


@pytest.mark.parametrize(
    ("state", "actions"),
    [
        (S.DRAFT, ["edit", "delete", "schedule", "send_now", "duplicate"]),  # Delete, not Cancel
        (S.IN_REVIEW, ["edit", "approve", "reject", "duplicate"]),
        (S.APPROVED, ["edit", "schedule", "send_now", "duplicate"]),
        (S.SCHEDULED, ["edit", "schedule", "send_now", "cancel", "duplicate"]),
        (S.SENDING, ["pause", "cancel", "duplicate"]),
        (S.PAUSED, ["edit", "resume", "cancel", "duplicate"]),
        (S.COMPLETED, ["archive", "duplicate"]),
        (S.CANCELLED, ["archive", "duplicate"]),
        (S.FAILED, ["edit", "schedule", "send_now", "archive", "duplicate"]),
        (S.ARCHIVED, ["duplicate"]),
    ],
)
def test_the_actions_offered_in_each_state(state: CampaignState, actions: list[str]) -> None:
    assert available_actions(state) == actions


@pytest.mark.parametrize(
    ("state", "actions"),
    [
        (S.DRAFT, ["edit", "delete", "submit", "duplicate"]),  # submitted for review, never sent directly
        (S.IN_REVIEW, ["edit", "approve", "reject", "duplicate"]),
        (S.APPROVED, ["edit", "schedule", "send_now", "duplicate"]),
        (S.SCHEDULED, ["edit", "schedule", "send_now", "cancel", "duplicate"]),
    ],
)
def test_the_actions_offered_when_approval_is_required(state: CampaignState, actions: list[str]) -> None:
    assert available_actions(state, approval_required=True) == actions


def test_a_review_moves_draft_to_in_review_to_approved_or_back_to_draft() -> None:
    assert submit(S.DRAFT) is S.IN_REVIEW
    assert approve(S.IN_REVIEW) is S.APPROVED
    assert reject(S.IN_REVIEW) is S.DRAFT
    for refused in (lambda: submit(S.SCHEDULED), lambda: approve(S.DRAFT), lambda: reject(S.APPROVED)):
        with pytest.raises(InvalidTransition):
            refused()


@pytest.mark.parametrize("state", list(CampaignState))
def test_a_change_to_approved_content_sends_it_back_to_review(state: CampaignState) -> None:
    expected = S.IN_REVIEW if state in (S.APPROVED, S.SCHEDULED, S.FAILED) else None
    assert after_content_change(state) is expected
