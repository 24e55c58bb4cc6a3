"""PostgreSQL's copy of the two transition tables, and keeping it equal to the Python ones.

The tables themselves are ``TRANSITIONS`` in ``libs/common/campaign_states.py`` and
``libs/common/run_states.py``; nothing here decides a move. Migration 0033 creates ``state_transitions``
and a trigger on ``campaigns`` and ``campaign_runs`` that refuses any change of ``state`` not in it;
:func:`sync_state_transitions` (run by ``python -m deploy.migrate`` at every boot) rewrites the rows that
differ from Python, so a change to a Python table reaches the database with the next deploy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from libs.common import campaign_states, run_states
from libs.common.db import Connection, Queries
from libs.common.logging import get_logger

__all__ = ["MACHINES", "Move", "StateTableSync", "allowed_moves", "sync_state_transitions"]

log = get_logger(__name__)

QUERIES: Final = Queries.load(Path(__file__).with_name("state_tables.sql"))

# The machine names in state_transitions.machine, and each one's table (campaigns.state, campaign_runs.state).
MACHINES: Final[Mapping[str, Mapping[Any, frozenset[Any]]]] = {
    "campaign": campaign_states.TRANSITIONS, "run": run_states.TRANSITIONS,
}

Move = tuple[str, str, str]  # (machine, from_state, to_state)


@dataclass(frozen=True, slots=True)
class StateTableSync:
    added: frozenset[Move]
    removed: frozenset[Move]


def allowed_moves() -> frozenset[Move]:
    """Every (machine, from, to) the Python tables allow."""
    return frozenset(
        (machine, _value(current), _value(target))
        for machine, table in MACHINES.items()
        for current, targets in table.items()
        for target in targets
    )


async def stored_moves(conn: Connection) -> frozenset[Move]:
    rows = await QUERIES.fetch(conn, "transition-rows")
    return frozenset((r["machine"], r["from_state"], r["to_state"]) for r in rows)


async def sync_state_transitions(conn: Connection) -> StateTableSync:
    """Make ``state_transitions`` hold exactly :func:`allowed_moves`; return what was added and removed.

    Idempotent, in one transaction of its own (or the caller's).
    """
    wanted = allowed_moves()
    async with conn.transaction():
        stored = await stored_moves(conn)
        added, removed = wanted - stored, stored - wanted
        if added:
            await QUERIES.execute(conn, "add-transitions", **_columns(added))
        if removed:
            await QUERIES.execute(conn, "remove-transitions", **_columns(removed))
    if added or removed:
        log.warning("state_transitions.synced", extra={"added": sorted(added), "removed": sorted(removed)})
    return StateTableSync(frozenset(added), frozenset(removed))


def _columns(moves: Iterable[Move]) -> dict[str, list[str]]:
    ordered = sorted(moves)
    return {"machines": [m[0] for m in ordered], "froms": [m[1] for m in ordered], "tos": [m[2] for m in ordered]}


def _value(state: StrEnum) -> str:
    return state.value
