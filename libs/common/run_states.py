"""The run state machine: one transition table, pure, beside the campaign's (``campaign_states.py``).

A run is one send of a campaign. The table, in words::

    pending    -> resolving, failed, missed, cancelled, refused
    resolving  -> sending, completed, over_limit, refused, failed, cancelled
    sending    -> completed, paused, refused, cancelled
    paused     -> sending, refused, cancelled
    completed, over_limit, refused, failed, missed, cancelled   (final)

Who moves a run: the scheduler (pending -> missed), the audience service (pending -> resolving, and
resolving -> sending or an end), the dispatcher (sending -> completed, sending -> paused at its failure
threshold or when Twilio refuses the account, any open run -> refused), the opt-out service (sending ->
paused on a 30032 callback) and staff through the API (pause, resume, cancel). PostgreSQL holds the same
table (``state_transitions``, ``libs/common/state_tables.py``) and refuses any other change.

    >>> transition(RunState.SENDING, RunState.PAUSED)
    <RunState.PAUSED: 'paused'>
    >>> transition("completed", "sending")
    Traceback (most recent call last):
    ...
    libs.common.errors.InvalidTransition: cannot go from completed to sending
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from libs.common.errors import InvalidTransition


class RunState(StrEnum):
    PENDING = "pending"
    RESOLVING = "resolving"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    OVER_LIMIT = "over_limit"
    REFUSED = "refused"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"


R = RunState

# The run states in which a run may still send something (campaign_runs.state).
OPEN: Final = frozenset({R.PENDING, R.RESOLVING, R.SENDING, R.PAUSED})
# The run states after which a run does nothing more.
ENDED: Final = frozenset(set(RunState) - OPEN)

# The one table. A state missing from a value set cannot be reached from its key; nothing else decides.
TRANSITIONS: Final[Mapping[RunState, frozenset[RunState]]] = {
    # -> missed: the scheduler found it later than the campaign allows; -> cancelled: a new schedule or
    # staff cancelling the campaign.
    R.PENDING: frozenset({R.RESOLVING, R.FAILED, R.MISSED, R.CANCELLED, R.REFUSED}),
    # -> completed: nobody to send to; -> over_limit, refused: checked before any recipient is published.
    R.RESOLVING: frozenset({R.SENDING, R.COMPLETED, R.OVER_LIMIT, R.REFUSED, R.FAILED, R.CANCELLED}),
    R.SENDING: frozenset({R.COMPLETED, R.PAUSED, R.REFUSED, R.CANCELLED}),
    # -> sending: staff resumed it (also a run the dispatcher paused).
    R.PAUSED: frozenset({R.SENDING, R.REFUSED, R.CANCELLED}),
    **{state: frozenset() for state in ENDED},
}


def can_transition(current: RunState | str, target: RunState | str) -> bool:
    return RunState(target) in TRANSITIONS[RunState(current)]


def transition(current: RunState | str, target: RunState | str) -> RunState:
    """Return ``target`` if the table allows ``current -> target``; raise InvalidTransition otherwise.

    Raises ValueError for a string that names no state (a bug, not a user error).
    """
    current, target = RunState(current), RunState(target)
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(current.value, target.value)
    return target


def sources(target: RunState | str) -> frozenset[RunState]:
    """The states from which ``target`` may be reached in one step."""
    return frozenset(state for state, allowed in TRANSITIONS.items() if RunState(target) in allowed)
