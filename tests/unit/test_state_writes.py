"""Every (from, to) the code can write to campaigns.state and campaign_runs.state is in the transition tables.

``WRITES`` lists each statement that changes a state and the moves it makes. The tests check the list
against the SQL text (no statement left out; each one's target and filter give exactly the listed moves),
derive the moves decided in Python by running the deciding functions on every state, and check every
move against the tables. PostgreSQL refuses any other move anyway (tests/integration/test_state_tables.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from libs.common import campaign_states
from libs.common.audience_rules import Verdict
from libs.common.campaign_states import CampaignState
from libs.common.errors import InvalidTransition
from libs.common.state_tables import MACHINES

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"campaigns": "campaign", "campaign_runs": "run"}
Moves = frozenset[tuple[str, str]]


def _decided(*deciders: Callable[[CampaignState], CampaignState | None]) -> Moves:
    """The campaign moves these functions of the table return, run on every state (refusals skipped)."""
    moves = set()
    for current, decide in itertools.product(CampaignState, deciders):
        try:
            target = decide(current)
        except InvalidTransition:
            continue
        if target is not None and target != current:
            moves.add((current.value, target.value))
    return frozenset(moves)


def _after_run() -> Moves:
    return _decided(*(
        lambda current, flags=flags: campaign_states.after_run(
            current, sent_anything=flags[0], has_more_occurrences=flags[1], other_runs_open=flags[2])
        for flags in itertools.product((False, True), repeat=3)
    ))


@dataclass(frozen=True)
class Write:
    """One statement's write to one table's state: ``moves`` as listed, and how the SQL chooses them:
    ``guard`` (state_may_change(machine, state, target)), ``sources`` (a literal filter on the state; a
    target given as a parameter takes the listed targets), or ``parameter`` (the target is ``:state``,
    decided in Python by the transition table)."""

    moves: Moves
    how: str


def _moves(pairs: Iterable[str]) -> Moves:
    return frozenset(tuple(p.split(" -> ")) for p in pairs)  # type: ignore[misc]


API, SCHEDULER = "services/api/queries.sql", "services/scheduler/queries.sql"
DISPATCHER, OPTOUT = "services/dispatcher/queries.sql", "services/optout/queries.sql"
AUDIENCE = "services/audience/queries.sql"
VERDICT_STATES = ("sending", "completed", "refused", "over_limit")  # audience_rules.Verdict.state

WRITES: dict[tuple[str, str, str], Write] = {
    # Staff through the API: the route decides with campaign_states, then writes :state.
    (API, "set-campaign-state", "campaigns"): Write(_decided(
        lambda s: campaign_states.transition(s, CampaignState.PAUSED), campaign_states.resume,
        lambda s: campaign_states.transition(s, CampaignState.CANCELLED),
        lambda s: campaign_states.transition(s, CampaignState.ARCHIVED),
        campaign_states.submit, campaign_states.approve, campaign_states.reject,
        campaign_states.after_content_change), "parameter"),
    (API, "set-schedule", "campaigns"): Write(_decided(campaign_states.schedule, campaign_states.send_now),
                                              "parameter"),
    (API, "cancel-unpublished-runs", "campaign_runs"): Write(_moves(["pending -> cancelled"]), "sources"),  # also
    # when an approved scheduled campaign changes and goes back to review
    (API, "cancel-open-runs", "campaign_runs"): Write(_moves(
        ["pending -> cancelled", "resolving -> cancelled", "sending -> cancelled", "paused -> cancelled"]), "guard"),
    (API, "pause-runs", "campaign_runs"): Write(_moves(["sending -> paused"]), "guard"),
    (API, "resume-runs", "campaign_runs"): Write(_moves(["paused -> sending"]), "sources"),
    # The scheduler publishes a run (scheduled -> sending) or finds it too late.
    (SCHEDULER, "set-campaign-state", "campaigns"): Write(_decided(  # publish; or withhold, unapproved
        lambda s: campaign_states.transition(s, CampaignState.SENDING),
        lambda s: campaign_states.transition(s, CampaignState.IN_REVIEW)), "parameter"),
    (SCHEDULER, "mark-missed", "campaign_runs"): Write(_moves(["pending -> missed"]), "sources"),
    (SCHEDULER, "refuse-unapproved-run", "campaign_runs"): Write(_moves(["pending -> refused"]), "sources"),
    (SCHEDULER, "withdraw-unapproved-campaign", "campaign_runs"): Write(_moves(["pending -> cancelled"]), "sources"),
    # The audience service resolves a run.
    (AUDIENCE, "begin-resolving", "campaign_runs"): Write(_moves(["pending -> resolving"]), "sources"),
    (AUDIENCE, "finish-resolving", "campaign_runs"): Write(
        _moves(f"resolving -> {s}" for s in VERDICT_STATES), "sources"),
    (AUDIENCE, "end-unresolved-run", "campaign_runs"): Write(
        _moves(["pending -> failed", "resolving -> failed", "pending -> refused", "resolving -> refused"]), "sources"),
    # The dispatcher completes, pauses and refuses runs; a pause pauses the campaign too.
    (DISPATCHER, "refresh-run-counts", "campaign_runs"): Write(_moves(["sending -> completed"]), "sources"),
    (DISPATCHER, "pause-run", "campaign_runs"): Write(_moves(["sending -> paused"]), "guard"),
    (DISPATCHER, "pause-run", "campaigns"): Write(_moves(["sending -> paused"]), "guard"),
    (DISPATCHER, "refuse-run", "campaign_runs"): Write(_moves(
        ["pending -> refused", "resolving -> refused", "sending -> refused", "paused -> refused"]), "guard"),
    # The opt-out service pauses what a 30032 callback names.
    (OPTOUT, "stop-unverified-senders", "campaign_runs"): Write(_moves(["sending -> paused"]), "guard"),
    (OPTOUT, "stop-unverified-senders", "campaigns"): Write(_moves(["sending -> paused"]), "guard"),
    # Whoever ends a run moves its campaign (libs/common/run_endings.py, with campaign_states.after_run).
    ("libs/common/run_endings.sql", "move-campaign", "campaigns"): Write(_after_run(), "parameter"),
}


@dataclass(frozen=True)
class StateUpdate:
    """What one ``UPDATE campaigns|campaign_runs ... SET state = ...`` says, read from its text."""

    targets: frozenset[str] | None  # None: a parameter
    guard: tuple[str, str] | None  # (machine, target) of state_may_change
    sources: frozenset[str]  # literal states compared with the row's state


_NAME = re.compile(r"^--\s*name:\s*([a-z0-9-]+)\s*$", re.M)
_UPDATE = re.compile(r"\bUPDATE\s+(\w+)\b", re.I)
_SET = re.compile(r"\bSET\b(.*?)(?:\bWHERE\b|\bFROM\b|\bRETURNING\b|$)", re.I | re.S)
_TARGET = re.compile(r"(?:^|,)\s*state\s*=\s*(CASE\b.*?\bEND|'\w+'|:\w+)", re.I | re.S)
_GUARD = re.compile(r"state_may_change\('(\w+)',\s*(?:\w+\.)?state,\s*'(\w+)'\)")
_SOURCE = re.compile(r"(?<![\w.:])(?:\w+\.)?state\s*(?:=\s*'(\w+)'|IN\s*\(([^)]*)\))", re.I)


def _statements() -> dict[tuple[str, str, str], StateUpdate]:
    found = {}
    for path in sorted(p for p in ROOT.glob("[ls]*/**/*.sql") if "migrations" not in p.parts):
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("--") or _NAME.match(line))
        parts = _NAME.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            chunks = _UPDATE.split(body)
            for table, chunk in zip(chunks[1::2], chunks[2::2], strict=True):
                assignments = _SET.search(chunk)
                target = assignments and _TARGET.search(assignments.group(1))
                if table not in TABLES or not assignments or not target:
                    continue
                value = target.group(1)
                if value.startswith(":"):
                    targets = None
                else:
                    targets = frozenset(re.findall(r"THEN\s+'(\w+)'", value) or [value.strip("'")])
                start = assignments.start(1)
                rest = chunk[:start + target.start()] + chunk[start + target.end(1):]
                rest += value if targets is not None and value.startswith("CASE") else ""
                rest = _GUARD.sub("", rest) if (guard := _GUARD.search(rest)) else rest
                sources = frozenset(s for one, many in _SOURCE.findall(rest)
                                    for s in ([one] if one else re.findall(r"'(\w+)'", many)))
                key = (str(path.relative_to(ROOT)), name, table)
                found[key] = StateUpdate(targets, guard.groups() if guard else None, sources)  # type: ignore[arg-type]
    return found


def test_every_statement_that_writes_a_state_is_listed() -> None:
    assert set(_statements()) == set(WRITES)


@pytest.mark.parametrize("key", sorted(WRITES), ids=lambda key: f"{key[0]}:{key[1]}:{key[2]}")
def test_the_sql_text_writes_the_listed_moves(key: tuple[str, str, str]) -> None:
    write, sql, machine = WRITES[key], _statements()[key], TABLES[key[2]]
    if write.how == "parameter":
        assert sql.targets is None and sql.guard is None
        return
    if write.how == "guard":
        assert sql.targets is not None and sql.guard is not None
        assert sql.guard[0] == machine and {sql.guard[1]} == sql.targets
        table = MACHINES[machine]
        written = {(s.value, t) for s, allowed in table.items() for t in sql.targets if t in allowed}
    else:
        assert sql.guard is None and sql.sources, "a literal filter on the state, or state_may_change"
        targets = sql.targets or {t for _, t in write.moves}  # a parameter: the listed targets
        written = set(itertools.product(sql.sources - targets, targets))
    assert written == set(write.moves)


@pytest.mark.parametrize("key", sorted(WRITES), ids=lambda key: f"{key[0]}:{key[1]}:{key[2]}")
def test_every_move_the_code_can_write_is_allowed(key: tuple[str, str, str]) -> None:
    table = MACHINES[TABLES[key[2]]]
    moves = WRITES[key].moves
    assert moves, "a statement that writes a state makes at least one move"
    refused = {(f, t) for f, t in moves if t not in {s.value for s in table[f]}}
    assert not refused


def test_the_audience_verdicts_are_the_listed_targets() -> None:
    assert set(get_args(get_type_hints(Verdict)["state"])) == set(VERDICT_STATES)
