"""The campaign state machine: one transition table, pure, shared by the API and the scheduler.

The table, in words::

    draft      -> scheduled, cancelled
    scheduled  -> sending, cancelled
    sending    -> completed, paused, cancelled, scheduled (a recurring campaign between runs)
    paused     -> sending, cancelled
    completed  -> archived
    cancelled  -> archived
    archived   (final)

Who moves a campaign: staff through the API (schedule, pause, resume, cancel, archive), the scheduler
(scheduled -> sending when it publishes a run), and whoever finishes a run (sending -> completed, or
back to scheduled when a recurring schedule has more occurrences; see :func:`after_run`).

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
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ARCHIVED = "archived"


S = CampaignState

# The one table. A state missing from a value set cannot be reached from its key; nothing else decides.
TRANSITIONS: Final[Mapping[CampaignState, frozenset[CampaignState]]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.SENDING, S.CANCELLED}),
    # -> scheduled: a run of a recurring campaign finished and the schedule has more occurrences.
    S.SENDING: frozenset({S.COMPLETED, S.PAUSED, S.SCHEDULED, S.CANCELLED}),
    S.PAUSED: frozenset({S.SENDING, S.CANCELLED}),
    S.COMPLETED: frozenset({S.ARCHIVED}),
    S.CANCELLED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}

# Edits (body, audience, sender, limits) are allowed before anything is sent, and while paused: what is
# edited then applies to the part not sent yet.
EDITABLE: Final = frozenset({S.DRAFT, S.SCHEDULED, S.PAUSED})
# A schedule may be set or replaced (scheduled -> scheduled is a reschedule, not a transition).
SCHEDULABLE: Final = frozenset({S.DRAFT, S.SCHEDULED})
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
    """The state after a schedule is set (or send-now asked): draft -> scheduled; scheduled stays.

    Raises CampaignNotEditable from any other state.
    """
    ensure_schedulable(current, action)
    return S.SCHEDULED if CampaignState(current) is S.SCHEDULED else transition(current, S.SCHEDULED)


def resume(current: CampaignState | str) -> CampaignState:
    """paused -> sending. Only a paused campaign resumes: scheduled -> sending is the scheduler's move."""
    if CampaignState(current) is not S.PAUSED:
        raise InvalidTransition(CampaignState(current).value, S.SENDING.value)
    return transition(current, S.SENDING)


def available_actions(current: CampaignState | str) -> list[str]:
    """What staff can do to a campaign in ``current``, as the API names it (for buttons, not for checks)."""
    state = CampaignState(current)
    offered = {
        "edit": state in EDITABLE,
        "delete": state is S.DRAFT,
        "schedule": state in SCHEDULABLE,
        "send_now": state in SCHEDULABLE,
        "pause": can_transition(state, S.PAUSED),
        "resume": state is S.PAUSED,
        "cancel": can_transition(state, S.CANCELLED),
        "archive": can_transition(state, S.ARCHIVED),
        "duplicate": True,
    }
    return [action for action, allowed in offered.items() if allowed]


def after_run(has_more_occurrences: bool) -> CampaignState:
    """Where a sending campaign goes when its run finishes: back to scheduled, or completed."""
    return transition(S.SENDING, S.SCHEDULED if has_more_occurrences else S.COMPLETED)


def next_states(current: CampaignState | str) -> list[CampaignState]:
    """The states reachable in one step, in the order of the enum (for the API's ``actions``)."""
    allowed = TRANSITIONS[CampaignState(current)]
    return [state for state in CampaignState if state in allowed]
