"""The dispatcher's only SQL: named queries from queries.sql, wrapped in typed calls."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import asyncpg

from libs.common.db import Queries
from libs.common.events import Recipient
from services.dispatcher.caps import CapPolicy, first_cap_reached, period_start

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True)
class AccountRow:
    account_sid: str
    username: str
    password: str
    webhook_base_url: str


class DispatchStore:
    def __init__(self, pool: asyncpg.Pool, *, run_state_ttl_s: float = 0.5) -> None:
        self._pool = pool
        self._q = QUERIES
        self._run_states: dict[uuid.UUID, tuple[float, str | None]] = {}
        self._ttl = run_state_ttl_s
        self._policies: dict[tuple[uuid.UUID, str], tuple[float, CapPolicy | None]] = {}

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._pool.acquire() as conn:
            yield conn

    async def check(self) -> None:
        async with self._pool.acquire() as conn:
            await self._q.check(conn)

    async def run_state(self, run_id: uuid.UUID) -> str | None:
        """The run's state, cached for half a second: a pause or cancel is seen within a second."""
        now = time.monotonic()
        cached = self._run_states.get(run_id)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        async with self._pool.acquire() as conn:
            state = await self._q.fetchval(conn, "run-state", run_id=run_id)
        self._run_states[run_id] = (now, state)
        if len(self._run_states) > 10_000:
            self._run_states.clear()
        return state

    async def claim(self, conn: asyncpg.Connection, e: Recipient, token: uuid.UUID, process_id: str) -> None:
        await self._q.execute(conn, "claim", run_id=e.run_id, recipient_id=e.recipient_id, org_id=e.org_id,
                              sender=e.sender, to_number=e.to, segments=e.segments, claimed_by=process_id,
                              claim_token=token)

    async def lock_entry(self, conn: asyncpg.Connection, e: Recipient) -> asyncpg.Record:
        return await self._q.fetchrow(conn, "lock-entry", run_id=e.run_id, recipient_id=e.recipient_id)

    async def reclaim(self, conn: asyncpg.Connection, e: Recipient, token: uuid.UUID, process_id: str) -> None:
        await self._q.execute(conn, "reclaim", run_id=e.run_id, recipient_id=e.recipient_id, claim_token=token,
                              claimed_by=process_id)

    async def record_sent(self, conn: asyncpg.Connection, e: Recipient, sid: str, status: str, segments: int,
                          price: Decimal | None, sent_at: float) -> None:
        await self._q.execute(conn, "record-sent", run_id=e.run_id, recipient_id=e.recipient_id, message_sid=sid,
                              twilio_status=status if status != "adopted" else None, segments=segments,
                              price=price, sent_at=sent_at)

    async def record_final(self, conn: asyncpg.Connection, e: Recipient, state: str, code: int | None) -> None:
        await self._q.execute(conn, "record-final", run_id=e.run_id, recipient_id=e.recipient_id, state=state,
                              error_code=code)

    async def refresh_run_counts(self, run_id: uuid.UUID) -> None:
        async with self._pool.acquire() as conn:
            await self._q.execute(conn, "refresh-run-counts", run_id=run_id)

    async def suppress(self, conn: asyncpg.Connection, e: Recipient) -> None:
        await self._q.execute(conn, "suppress", org_id=e.org_id, phone=e.to, sender=e.sender)

    async def mark_bad_number(self, conn: asyncpg.Connection, e: Recipient, code: int) -> None:
        await self._q.execute(conn, "mark-bad-number", org_id=e.org_id, phone=e.to, error_code=code)

    async def recent_outcomes(self, conn: asyncpg.Connection, run_id: uuid.UUID, window: int) -> tuple[int, int]:
        row = await self._q.fetchrow(conn, "recent-outcomes", run_id=run_id, window=window)
        return row["failed"], row["total"]

    async def pause_run(self, conn: asyncpg.Connection, run_id: uuid.UUID, reason: str) -> None:
        await self._q.execute(conn, "pause-run", run_id=run_id, reason=reason[:500])
        self._run_states.pop(run_id, None)

    async def cap_policy(self, org_id: uuid.UUID, verification: str) -> CapPolicy | None:
        key = (org_id, verification)
        cached = self._policies.get(key)
        if cached is None or time.monotonic() - cached[0] > 60:
            async with self._pool.acquire() as conn:
                row = await self._q.fetchrow(conn, "cap-policy", org_id=org_id, verification=verification)
            cached = (time.monotonic(), CapPolicy(**dict(row)) if row else None)
            self._policies[key] = cached
        return cached[1]

    async def reserve_volume(self, conn: asyncpg.Connection, sender: str, segments: int,
                             limits: dict[str, int], now: datetime) -> str | None:
        """Add ``segments`` to the sender's current periods unless a cap would pass; return that period."""
        periods = list(limits)
        starts = [period_start(p, now) for p in periods]
        await self._q.execute(conn, "ensure-volume", sender=sender, periods=periods, starts=starts)
        rows = await self._q.fetch(conn, "lock-volume", sender=sender, periods=periods, starts=starts)
        reached = first_cap_reached({r["period"]: r["segments"] for r in rows}, limits, segments)
        if reached is None:
            await self._q.execute(conn, "add-volume", sender=sender, periods=periods, starts=starts,
                                  segments=segments)
        return reached

    async def record_capped(self, conn: asyncpg.Connection, e: Recipient, reason: str) -> None:
        await self._q.execute(conn, "record-capped", run_id=e.run_id, recipient_id=e.recipient_id, reason=reason)

    async def refuse_run(self, run_id: uuid.UUID, reason: str) -> None:
        async with self._pool.acquire() as conn:
            await self._q.execute(conn, "refuse-run", run_id=run_id, reason=reason[:500])
        self._run_states.pop(run_id, None)

    async def recent_sends(self, sender: str) -> list[tuple[float, int]]:
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "recent-sends", sender=sender)
        return [(r["anchor"], r["segments"]) for r in rows]

    async def account(self, org_id: uuid.UUID) -> AccountRow | None:
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "account", org_id=org_id)
        return AccountRow(**dict(row)) if row else None

    async def sender_rate(self, org_id: uuid.UUID, address: str) -> tuple[str, float] | None:
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "sender", org_id=org_id, address=address)
        return (row["verification"], row["segments_per_second"]) if row else None
