"""Batched ledger writes: the claims and outcomes of every lane of this process, a statement per batch.

At a thousand sends a second the round trips to PostgreSQL, not the rows, are the cost. So the common
case, a recipient seen for the first time, is claimed through this writer: one connection of its own, a
statement for all the claims that are waiting and one for all the outcomes, each batch being whatever
queued while the previous statement ran (no timer, no added latency when the process is quiet). The
writer's connection holds the claimed entries' locks until their outcomes are written. If that connection
dies, its locks die with it, as a killed process's would: the entries stay claimed and are reconciled.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from libs.common.db import Connection, Queries
from libs.common.errors import RetryableError
from libs.common.events import Recipient
from libs.common.logging import get_logger

log = get_logger(__name__)


class LedgerUnavailable(RetryableError):
    """A batched write failed or lost its claim: whether it took effect is unknown until reconciled."""


@dataclass(frozen=True)
class FirstClaim:
    claimed_at: datetime
    suppressed: bool


@dataclass(frozen=True)
class Outcome:
    state: str
    message_sid: str | None = None
    twilio_status: str | None = None
    segments: int | None = None
    price: Decimal | None = None
    sent_at: float | None = None
    error_code: int | None = None
    reason: str | None = None


@dataclass
class _Op:
    event: Recipient
    token: uuid.UUID
    key: int
    outcome: Outcome | None = None
    future: asyncio.Future[FirstClaim | None] | None = field(default=None)  # a claim's answer; None for the others


class LedgerWriter:
    def __init__(self, pool: asyncpg.Pool, queries: Queries, process_id: str) -> None:
        self._pool = pool
        self._q = queries
        self._process_id = process_id
        self._claims: list[_Op] = []
        self._outcomes: list[_Op] = []
        self._releases: list[int] = []
        self._wakeup = asyncio.Event()
        self._conn: PoolConnectionProxy | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self) -> None:
        """Write what is queued, then close the connection (any lock still on it goes with it)."""
        if self._task is not None:
            deadline = asyncio.get_running_loop().time() + 5.0
            while (self._claims or self._outcomes or self._releases) and not self._task.done() \
                    and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drop_connection()

    async def claim(self, event: Recipient, token: uuid.UUID, key: int) -> FirstClaim | None:
        """Claim and lock a recipient seen for the first time; None if it was claimed before (or its lock
        is taken), and the caller takes the careful path."""
        return await self._queue(self._claims, _Op(event, token, key))

    async def record(self, event: Recipient, token: uuid.UUID, key: int, outcome: Outcome) -> None:
        """Write the outcome of an entry this writer claimed, and unlock it."""
        await self._queue(self._outcomes, _Op(event, token, key, outcome))

    def release(self, key: int) -> None:
        """Unlock an entry given up without an outcome; does not wait."""
        self._releases.append(key)
        self._wakeup.set()

    async def _queue(self, queue: list[_Op], op: _Op) -> FirstClaim | None:
        op.future = asyncio.get_running_loop().create_future()
        queue.append(op)
        self._wakeup.set()
        return await op.future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # Outcomes first: they unlock entries that other holders may be waiting for.
            outcomes, releases, self._outcomes, self._releases = self._outcomes, self._releases, [], []
            if outcomes or releases:
                await self._guarded(outcomes, self._write_outcomes, outcomes, releases)
            claims, self._claims = self._claims, []
            if claims:
                await self._guarded(claims, self._write_claims, claims)

    async def _guarded(self, ops: list[_Op], write: Any, *args: Any) -> None:
        try:
            await write(await self._connection(), *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every waiter learns of it; the connection is replaced
            log.warning("ledger_writer.batch_failed", extra={"error": repr(exc), "size": len(ops)})
            await self._drop_connection()
            for op in ops:
                if op.future is not None and not op.future.done():
                    op.future.set_exception(LedgerUnavailable("ledger_unavailable", f"ledger write failed: {exc}"))

    async def _write_claims(self, conn: Connection, ops: list[_Op]) -> None:
        rows = await self._q.fetch(
            conn, "claim-new-batch", claimed_by=self._process_id,
            run_ids=[o.event.run_id for o in ops], recipient_ids=[o.event.recipient_id for o in ops],
            org_ids=[o.event.org_id for o in ops], senders=[o.event.sender for o in ops],
            to_numbers=[o.event.to for o in ops], segments=[o.event.segments for o in ops],
            claim_tokens=[o.token for o in ops], lock_keys=[o.key for o in ops])
        claimed = {(r["run_id"], r["recipient_id"]): r for r in rows}
        for op in ops:
            row = claimed.pop((op.event.run_id, op.event.recipient_id), None)
            if row is not None and not row["locked"]:
                # Inserted, but the key is held (a collision with another entry): the careful path waits.
                row = None
            assert op.future is not None
            if not op.future.done():
                op.future.set_result(FirstClaim(row["claimed_at"], row["suppressed"]) if row else None)

    async def _write_outcomes(self, conn: Connection, ops: list[_Op], releases: list[int]) -> None:
        outcomes = [o.outcome for o in ops if o.outcome is not None]
        row = await self._q.fetchrow(
            conn, "record-outcomes-batch",
            run_ids=[o.event.run_id for o in ops], recipient_ids=[o.event.recipient_id for o in ops],
            claim_tokens=[o.token for o in ops], states=[o.state for o in outcomes],
            message_sids=[o.message_sid for o in outcomes], twilio_statuses=[o.twilio_status for o in outcomes],
            segments=[o.segments for o in outcomes], prices=[o.price for o in outcomes],
            sent_ats=[o.sent_at for o in outcomes], error_codes=[o.error_code for o in outcomes],
            reasons=[o.reason for o in outcomes], lock_keys=[o.key for o in ops] + releases)
        assert row is not None  # an aggregate: always one row
        recorded = set(zip(row["runs"], row["recipients"], strict=True))
        for op in ops:
            assert op.future is not None
            if op.future.done():
                continue
            if (op.event.run_id, op.event.recipient_id) in recorded:
                op.future.set_result(None)
            else:  # the claim is no longer this attempt's: its lock was lost with an earlier connection
                op.future.set_exception(LedgerUnavailable("ledger_claim_lost", "the entry was claimed again"))

    async def _connection(self) -> PoolConnectionProxy:
        if self._conn is None:
            self._conn = await self._pool.acquire()
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.terminate()  # its locks must not go back to the pool
            await self._pool.release(conn)
        except asyncpg.InterfaceError:
            pass  # the pool took it back already, when the server closed it
