"""Whether a recipient may be texted now: quiet hours in their local time, and the frequency caps.

Asked for each claimed entry just before its Twilio call (``delivery.py``). The answer is one of:

- ``send``: the window is open and no cap is reached;
- ``hold`` until the instant the window opens, when that is before the campaign's hold limit (the run's
  occurrence plus ``campaigns.hold_limit_s``): the ledger keeps the hold (``holds.py`` releases it);
- ``outside_window``: the window does not open before the hold limit;
- ``frequency_capped``: the number had the state's texts per 24 h on this campaign (Oklahoma, Maryland,
  Florida: 3), or, for a marketing campaign, the organisation's cap in its period.

The verdict is :func:`libs.common.send_verdict.decide` (the planner's too); the counts come from the
ledger, so every campaign and every dispatcher process is counted. A recipient's address comes with its
snapshot row, read for the whole fetched batch before anything is claimed (:meth:`SendGate.note_addresses`),
so only a recipient a cap may stop needs the ledger's counts (``recipient-send-facts``); one whose row was not
noted (a process that restarted in between) is read there too. Those reads are still made at send time, but
the lanes asking while one is in flight are answered together by the next (``ReadTogether``): one
statement per round trip, not one per text.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from libs.common.db import Connection, Queries
from libs.common.events import Recipient
from libs.common.quiet_hours import resolve_location, state_text_limit
from libs.common.read_together import ReadTogether
from libs.common.send_verdict import SEND, RunRules, Verdict, decide, marketing_cap_of, org_window_of
from services.dispatcher.snapshot import SnapshotRow

QUERIES = Queries.load(Path(__file__).with_name("send_rules.sql"))
RULES_TTL_S = 60.0
NOTED_ADDRESSES_MAX = 100_000  # noted but never asked for (suppressed, cancelled...): forgotten past this
FACTS_BATCH_MAX = 500  # entries answered by one recipient-send-facts statement
Address = tuple[str | None, str | None]  # (state, time zone) of a snapshot row


def rules_from_row(row: asyncpg.Record) -> RunRules:
    """The rules from a row of ``run-send-rules`` (organisations 0045, campaigns 0044)."""
    return RunRules(row["time_zone"], org_window_of(row), marketing_cap_of(row), row["transactional"],
                    row["campaign_id"], row["hold_ends"])


@dataclass(frozen=True, slots=True)
class _RunFacts:
    rules: RunRules
    has_addresses: bool  # any recipient of the run with an address: without, the area code alone decides


@dataclass(frozen=True, slots=True)
class _FactsAsked:
    event: Recipient
    claimed_at: datetime
    campaign_id: uuid.UUID
    now: datetime
    cap_days: int


async def _read_facts(pool: asyncpg.Pool, batch: list[_FactsAsked]) -> list[asyncpg.Record | None]:
    """``recipient-send-facts`` for a batch of entries, one answer (or None: no row) per entry, in order."""
    async with pool.acquire() as conn:
        rows = await QUERIES.fetch(
            conn, "recipient-send-facts", org_ids=[a.event.org_id for a in batch],
            to_numbers=[a.event.to for a in batch], run_ids=[a.event.run_id for a in batch],
            recipient_ids=[a.event.recipient_id for a in batch], claimed_ats=[a.claimed_at for a in batch],
            campaign_ids=[a.campaign_id for a in batch], nows=[a.now for a in batch],
            cap_days=[a.cap_days for a in batch])
    by_position = {row["i"]: row for row in rows}
    return [by_position.get(i) for i in range(1, len(batch) + 1)]


class SendGate:
    """Reads what :func:`decide` needs: the run's rules (cached a minute) and, only when a cap or an address
    can change the verdict, the recipient's address and the ledger's counts (one statement)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._runs: dict[uuid.UUID, tuple[float, asyncio.Future[_RunFacts | None]]] = {}
        self._addresses: dict[tuple[uuid.UUID, uuid.UUID], Address] = {}
        self._facts: ReadTogether[_FactsAsked, asyncpg.Record | None] = ReadTogether(
            functools.partial(_read_facts, pool), batch_max=FACTS_BATCH_MAX)

    def note_addresses(self, events: Sequence[Recipient], rows: Sequence[SnapshotRow]) -> None:
        """Keep each queued event's address from its snapshot row until its verdict is asked for."""
        if len(self._addresses) > NOTED_ADDRESSES_MAX:
            self._addresses.clear()
        for event, row in zip(events, rows, strict=True):
            if row.status == "queued":
                self._addresses[(event.run_id, event.recipient_id)] = (row.address_state, row.address_time_zone)

    async def check(self, conn: Connection) -> None:
        await QUERIES.check(conn)

    async def _run_facts(self, run_id: uuid.UUID) -> _RunFacts | None:
        """One read per run at a time, as ``DispatchStore.run_state``: every lane of the run waits on it."""
        cached = self._runs.get(run_id)
        if cached is None or time.monotonic() - cached[0] > RULES_TTL_S:
            if len(self._runs) > 10_000:
                self._runs.clear()
            cached = (time.monotonic(), asyncio.ensure_future(self._read_run_facts(run_id)))
            self._runs[run_id] = cached
        try:
            return await asyncio.shield(cached[1])
        except Exception:
            if self._runs.get(run_id) is cached:
                del self._runs[run_id]
            raise

    async def _read_run_facts(self, run_id: uuid.UUID) -> _RunFacts | None:
        async with self._pool.acquire() as conn:
            row = await QUERIES.fetchrow(conn, "run-send-rules", run_id=run_id)
        return _RunFacts(rules_from_row(row), row["has_addresses"]) if row is not None else None

    async def verdict(self, event: Recipient, claimed_at: datetime, now: float) -> Verdict:
        run = await self._run_facts(event.run_id)
        if run is None:  # no run (deleted meanwhile): the delivery's own checks decide
            return SEND
        rules, at = run.rules, datetime.fromtimestamp(now, UTC)
        marketing_cap = rules.marketing_cap is not None and not rules.transactional
        address = self._addresses.pop((event.run_id, event.recipient_id), None)
        if address is None and not run.has_addresses:
            address = (None, None)
        if address is not None:
            state, zone = address
            location = resolve_location(event.to, org_time_zone=rules.org_time_zone, address_state=state,
                                        address_time_zone=zone)
            if not (marketing_cap or state_text_limit(location) is not None):
                return decide(rules, at, e164=event.to, address_state=state, address_time_zone=zone,
                              marketing_sent=0, subject_sent=0)
        facts = await self._facts.get(_FactsAsked(
            event, claimed_at, rules.campaign_id, at,
            cap_days=rules.marketing_cap[1] if rules.marketing_cap and marketing_cap else 0))
        if facts is None:
            return SEND
        return decide(rules, at, e164=event.to, address_state=facts["address_state"],
                      address_time_zone=facts["address_time_zone"], marketing_sent=facts["marketing"],
                      subject_sent=facts["subject"])
