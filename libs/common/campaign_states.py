"""The campaign state machine: one transition table, pure, shared by the API and the scheduler.

The table, in words::

    draft      -> scheduled, sending (send now), in_review (submitted for approval)
    in_review  -> approved, draft (rejected, with a comment)
    approved   -> scheduled, sending, in_review (its wording, audience or sender changed)
    scheduled  -> sending, cancelled, failed (its only run was missed), in_review (changed while approval is required)
    sending    -> completed, paused, cancelled, scheduled (a recurring campaign between runs), failed,
                  in_review (the scheduler found its next run's content not what was approved)
    paused     -> sending, cancelled, failed (its run was refused while paused)
    completed  -> archived
    cancelled  -> archived
    failed     -> scheduled, sending (fixed and sent again), archived, in_review (changed: approve again)
    archived   (final)

The review states matter only to an organisation that requires approval (``services/api/approval.py``
decides when a campaign needs one); for the others, draft -> scheduled or sending stays as it was.

``failed`` reads "Not sent": the campaign's last run ended without sending anything (over the segment
limit, refused, every member excluded, missed, the audience could not be read). It stays editable, so
staff can fix the limit, audience or sender and send it again. A draft is deleted, never cancelled.

Who moves a campaign: staff through the API (schedule, send now, pause, resume, cancel, archive), the
scheduler (scheduled -> sending when it publishes a run), and whoever ends a run: every run ends, and
its campaign follows :func:`after_run` (``libs/common/run_endings.py`` applies it in each service).
Runs have a table of their own (``libs/common/run_states.py``); PostgreSQL holds both
(``state_transitions``, ``libs/common/state_tables.py``) and refuses any other change of state.

    >>> transition(CampaignState.DRAFT, CampaignState.SCHEDULED)
    <CampaignState.SCHEDULED: 'scheduled'>
    >>> transition("completed", "paused")
    Traceback (most recent call last):
    ...
    libs.common.errors.InvalidTransition: cannot go from completed to paused
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from libs.common.errors import InvalidTransition


class CampaignState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    ARCHIVED = "archived"


S = CampaignState

# The one table. A state missing from a value set cannot be reached from its key; nothing else decides.
TRANSITIONS: Final[Mapping[CampaignState, frozenset[CampaignState]]] = {
    # -> sending: send now (the run is due at once; the scheduler publishes it within a second).
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING, S.IN_REVIEW}),
    # -> draft: rejected, with the approver's comment.
    S.IN_REVIEW: frozenset({S.APPROVED, S.DRAFT}),
    # -> in_review: the approved wording, audience or sender changed.
    S.APPROVED: frozenset({S.SCHEDULED, S.SENDING, S.IN_REVIEW}),
    # -> failed: a one-time campaign whose run was found too late (missed).
    # -> in_review: a change to an approved series (or a one-time campaign) waiting to be sent.
    S.SCHEDULED: frozenset({S.SENDING, S.CANCELLED, S.FAILED, S.IN_REVIEW}),
    # -> scheduled: a run of a recurring campaign ended and the schedule has more occurrences.
    # -> in_review: the scheduler refused a run whose content is not what was approved (send now, or a
    # series with a run still sending).
    S.SENDING: frozenset({S.COMPLETED, S.PAUSED, S.SCHEDULED, S.CANCELLED, S.FAILED, S.IN_REVIEW}),
    S.PAUSED: frozenset({S.SENDING, S.CANCELLED, S.FAILED}),
    S.COMPLETED: frozenset({S.ARCHIVED}),
    S.CANCELLED: frozenset({S.ARCHIVED}),
    S.FAILED: frozenset({S.SCHEDULED, S.SENDING, S.ARCHIVED, S.IN_REVIEW}),
    S.ARCHIVED: frozenset(),
}

# Edits (body, audience, sender, limits) are allowed before anything is sent, while paused and after a
# run that sent nothing. A run takes a copy of the content when it is created, so an edit applies to the
# next run only: the run in progress sends what it was started with.
EDITABLE: Final = frozenset({S.DRAFT, S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.PAUSED, S.FAILED})
# A schedule may be set or replaced, or the campaign sent now (scheduled -> scheduled is a reschedule).
SCHEDULABLE: Final = frozenset({S.DRAFT, S.APPROVED, S.SCHEDULED, S.FAILED})
# Where an edit of the wording, audience or sender sends a campaign back to review (approval required).
BACK_TO_REVIEW: Final = frozenset({S.APPROVED, S.SCHEDULED, S.FAILED})
FINAL: Final = frozenset({S.COMPLETED, S.CANCELLED, S.ARCHIVED})


class CampaignNotEditable(InvalidTransition):
    """An edit (or a reschedule, or a delete) asked of a campaign in a state that does not allow it."""

    def __init__(self, current: str, requested: str, allowed: frozenset[CampaignState]) -> None:
        super().__init__(current, requested)
        self.code = "campaign_not_editable"
        self.message = (
            f"a {current} campaign cannot be {requested}; "
            f"only {', '.join(sorted(allowed))} campaigns can"
        )
        self.args = (self.message,)


def can_transition(current: CampaignState | str, target: CampaignState | str) -> bool:
    return CampaignState(target) in TRANSITIONS[CampaignState(current)]


def transition(current: CampaignState | str, target: CampaignState | str) -> CampaignState:
    """Return ``target`` if the table allows ``current -> target``; raise InvalidTransition otherwise.

    Raises ValueError for a string that names no state (a bug, not a user error).
    """
    current, target = CampaignState(current), CampaignState(target)
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(current.value, target.value)
    return target


def ensure_editable(current: CampaignState | str, action: str = "edited") -> None:
    """Raise CampaignNotEditable unless a campaign in ``current`` may be changed."""
    if CampaignState(current) not in EDITABLE:
        raise CampaignNotEditable(CampaignState(current).value, action, EDITABLE)


def ensure_schedulable(current: CampaignState | str, action: str = "scheduled") -> None:
    """Raise CampaignNotEditable unless a campaign in ``current`` may get a new schedule or send-now."""
    if CampaignState(current) not in SCHEDULABLE:
        raise CampaignNotEditable(CampaignState(current).value, action, SCHEDULABLE)


def schedule(current: CampaignState | str, action: str = "scheduled") -> CampaignState:
    """The state after a schedule is set: draft or failed -> scheduled; scheduled stays.

    Raises CampaignNotEditable from any other state.
    """
    ensure_schedulable(current, action)
    return S.SCHEDULED if CampaignState(current) is S.SCHEDULED else transition(current, S.SCHEDULED)


def send_now(current: CampaignState | str) -> CampaignState:
    """The state after send-now: sending at once (its run is due now), so the page offers Pause and Cancel.

    Raises CampaignNotEditable from a state that cannot be sent now.
    """
    ensure_schedulable(current, "sent now")
    return transition(current, S.SENDING)


def submit(current: CampaignState | str) -> CampaignState:
    """draft -> in_review: the author asks for approval (other moves to in_review follow a change)."""
    if CampaignState(current) is not S.DRAFT:
        raise InvalidTransition(CampaignState(current).value, S.IN_REVIEW.value)
    return transition(current, S.IN_REVIEW)


def approve(current: CampaignState | str) -> CampaignState:
    """in_review -> approved."""
    return transition(current, S.APPROVED)


def reject(current: CampaignState | str) -> CampaignState:
    """in_review -> draft: rejected, back to its authors."""
    if CampaignState(current) is not S.IN_REVIEW:
        raise InvalidTransition(CampaignState(current).value, S.DRAFT.value)
    return transition(current, S.DRAFT)


def after_content_change(current: CampaignState | str) -> CampaignState | None:
    """Where an edit of the approved wording, audience or sender sends a campaign, or None when it stays
    (a draft, or one in review: its approval is still to come)."""
    state = CampaignState(current)
    return transition(state, S.IN_REVIEW) if state in BACK_TO_REVIEW else None


def resume(current: CampaignState | str) -> CampaignState:
    """paused -> sending. Only a paused campaign resumes: scheduled -> sending is the scheduler's move."""
    if CampaignState(current) is not S.PAUSED:
        raise InvalidTransition(CampaignState(current).value, S.SENDING.value)
    return transition(current, S.SENDING)


def available_actions(current: CampaignState | str, *, approval_required: bool = False) -> list[str]:
    """What staff can do to a campaign in ``current``, as the API names it (for buttons, not for checks).

    With ``approval_required``, a draft is submitted for review instead of being scheduled or sent.
    """
    state = CampaignState(current)
    sendable = state in SCHEDULABLE and not (approval_required and state is S.DRAFT)
    offered = {
        "edit": state in EDITABLE,
        "delete": state is S.DRAFT,
        "submit": approval_required and state is S.DRAFT,
        "approve": state is S.IN_REVIEW,
        "reject": state is S.IN_REVIEW,
        "schedule": sendable,
        "send_now": sendable,
        "pause": can_transition(state, S.PAUSED),
        "resume": state is S.PAUSED,
        "cancel": can_transition(state, S.CANCELLED),
        "archive": can_transition(state, S.ARCHIVED),
        "duplicate": True,
    }
    return [action for action, allowed in offered.items() if allowed]


def after_run(
    current: CampaignState | str, *, sent_anything: bool, has_more_occurrences: bool, other_runs_open: bool = False
) -> CampaignState | None:
    """Where a campaign in ``current`` goes when one of its runs has ended, or None when it stays.

    Back to scheduled when the schedule has more occurrences; else completed if the run sent anything,
    failed ("Not sent") if it did not. It stays while another of its runs is still open, and when the
    table allows no such move (a campaign staff cancelled, a paused recurring campaign stays paused).
    """
    if other_runs_open:
        return None
    if has_more_occurrences:
        target = S.SCHEDULED
    else:
        target = S.COMPLETED if sent_anything else S.FAILED
    current = CampaignState(current)
    return target if current is not target and can_transition(current, target) else None


def next_states(current: CampaignState | str) -> list[CampaignState]:
    """The states reachable in one step, in the order of the enum (for the API's ``actions``)."""
    allowed = TRANSITIONS[CampaignState(current)]
    return [state for state in CampaignState if state in allowed]
