"""Every allowed and every refused campaign transition, checked against the issue's list, not the table."""

from __future__ import annotations

import itertools

import pytest

from libs.common.campaign_states import (
    EDITABLE,
    CampaignNotEditable,
    CampaignState,
    after_run,
    available_actions,
    can_transition,
    ensure_editable,
    ensure_schedulable,
    next_states,
    resume,
    schedule,
    transition,
)
from libs.common.errors import InvalidTransition, PermanentError

S = CampaignState

# Written out from issue 6, independently of TRANSITIONS: a change to the table must change this too.
ALLOWED = {
    (S.DRAFT, S.SCHEDULED),
    (S.SCHEDULED, S.SENDING),
    (S.SENDING, S.COMPLETED),
    (S.SENDING, S.PAUSED),
    (S.PAUSED, S.SENDING),
    (S.SENDING, S.SCHEDULED),  # a recurring campaign between runs
    *((state, S.CANCELLED) for state in (S.DRAFT, S.SCHEDULED, S.SENDING, S.PAUSED)),
    (S.COMPLETED, S.ARCHIVED),
    (S.CANCELLED, S.ARCHIVED),
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


def test_archived_is_final_and_nothing_returns_to_draft() -> None:
    assert next_states(S.ARCHIVED) == []
    assert all(not can_transition(state, S.DRAFT) for state in CampaignState)


def test_next_states_lists_what_the_api_offers() -> None:
    assert next_states(S.SENDING) == [S.SCHEDULED, S.PAUSED, S.COMPLETED, S.CANCELLED]
    assert next_states("draft") == [S.SCHEDULED, S.CANCELLED]


@pytest.mark.parametrize("state", list(CampaignState))
def test_editing_is_allowed_in_draft_scheduled_and_paused_only(state: CampaignState) -> None:
    if state in (S.DRAFT, S.SCHEDULED, S.PAUSED):
        ensure_editable(state)
        return
    with pytest.raises(CampaignNotEditable) as refused:
        ensure_editable(state)
    assert isinstance(refused.value, InvalidTransition) and refused.value.current == state.value
    assert refused.value.code == "campaign_not_editable"
    assert str(refused.value) == f"a {state} campaign cannot be edited; only draft, paused, scheduled campaigns can"
    assert EDITABLE == {S.DRAFT, S.SCHEDULED, S.PAUSED}


@pytest.mark.parametrize("state", list(CampaignState))
def test_a_schedule_is_set_or_replaced_only_before_sending(state: CampaignState) -> None:
    if state in (S.DRAFT, S.SCHEDULED):
        ensure_schedulable(state, "sent now")
        return
    with pytest.raises(CampaignNotEditable, match=f"a {state} campaign cannot be sent now"):
        ensure_schedulable(state, "sent now")


def test_a_finished_run_completes_the_campaign_or_waits_for_the_next_occurrence() -> None:
    assert after_run(has_more_occurrences=True) is S.SCHEDULED
    assert after_run(has_more_occurrences=False) is S.COMPLETED


def test_an_unknown_state_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError):
        transition("sent", "archived")


@pytest.mark.parametrize("state", list(CampaignState))
def test_scheduling_moves_a_draft_and_keeps_a_scheduled_campaign(state: CampaignState) -> None:
    if state in (S.DRAFT, S.SCHEDULED):
        assert schedule(state) is S.SCHEDULED
    else:
        with pytest.raises(CampaignNotEditable):
            schedule(state)


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
        (S.DRAFT, ["edit", "delete", "schedule", "send_now", "cancel", "duplicate"]),
        (S.SCHEDULED, ["edit", "schedule", "send_now", "cancel", "duplicate"]),
        (S.SENDING, ["pause", "cancel", "duplicate"]),
        (S.PAUSED, ["edit", "resume", "cancel", "duplicate"]),
        (S.COMPLETED, ["archive", "duplicate"]),
        (S.CANCELLED, ["archive", "duplicate"]),
        (S.ARCHIVED, ["duplicate"]),
    ],
)
def test_the_actions_offered_in_each_state(state: CampaignState, actions: list[str]) -> None:
    assert available_actions(state) == actions
