"""The dispatcher's only SQL: named queries from queries.sql, wrapped in typed calls."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal, TypeAlias

import asyncpg

from libs.common import run_endings, run_reasons, sender_volume
from libs.common.db import Connection, Queries
from libs.common.events import Recipient, SendOutcome, SendResult
from libs.common.run_reasons import RunReason
from libs.common.secret_store import SecretStore, TwilioLogin, open_twilio_login
from libs.common.sender_caps import CapPolicy
from services.dispatcher import holds
from services.dispatcher.ledger_writer import LedgerWriter, Outcome
from services.dispatcher.results import earlier_result
from services.dispatcher.snapshot import SnapshotRow

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))


def lock_key(run_id: uuid.UUID, recipient_id: uuid.UUID) -> int:
    """The entry's advisory-lock key: 64 bits of its (run, recipient). A collision only makes one wait."""
    mixed = (run_id.int ^ recipient_id.int) & 0xFFFF_FFFF_FFFF_FFFF
    return mixed - (1 << 64) if mixed >= 1 << 63 else mixed


LedgerState: TypeAlias = Literal["claimed", "held"] | SendOutcome  # send_ledger.state


@dataclass
class LedgerEntry:
    """One recipient's ledger row as its lock holder sees it, with the connection that holds the lock."""

    conn: Connection | None  # None: claimed through the ledger writer, which holds the lock
    key: int
    event: Recipient
    state: LedgerState
    claim_token: uuid.UUID
    claimed_at: datetime
    message_sid: str | None = None
    segments: int = 0
    error_code: int | None = None
    suppressed: bool = False
    released: bool = False


@dataclass(frozen=True)
class AccountRow:
    login: TwilioLogin
    webhook_base_url: str
    alpha_sender_id: str | None = None


class DispatchStore:
    def __init__(self, pool: asyncpg.Pool, *, run_state_ttl_s: float = 0.5,
                 writer: LedgerWriter | None = None, now: Callable[[], float] = time.time) -> None:
        """``now`` is the dispatcher's clock: the time its ledger anchors (``sent_at``) are written in."""
        self._pool = pool
        self._now = now
        self._writer = writer
        self._q = QUERIES
        self._run_states: dict[uuid.UUID, tuple[float, asyncio.Future[str | None]]] = {}
        self._ttl = run_state_ttl_s
        self._policies: dict[tuple[uuid.UUID, str], tuple[float, CapPolicy | None]] = {}

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._pool.acquire() as conn:
            yield conn

    async def check(self) -> None:
        async with self._pool.acquire() as conn:
            await self._q.check(conn)
            await run_endings.QUERIES.check(conn)
            await sender_volume.QUERIES.check(conn)
            await holds.QUERIES.check(conn)

    async def snapshot_rows(self, events: list[Recipient]) -> list[SnapshotRow]:
        """What the database holds for each event, in their order (one round trip for all of them)."""
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "snapshot-rows", run_ids=[e.run_id for e in events],
                                       recipient_ids=[e.recipient_id for e in events])
        return [SnapshotRow(**dict(r)) for r in rows]

    async def earlier_results(self, events: list[Recipient]) -> list[SendResult | None]:
        """For each event, in their order, the result an earlier attempt ended it with (None: not ended)."""
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "ledger-outcomes", run_ids=[e.run_id for e in events],
                                       recipient_ids=[e.recipient_id for e in events])
        return [None if r["state"] is None else
                earlier_result(e, r["state"], r["message_sid"], r["segments"], r["error_code"])
                for e, r in zip(events, rows, strict=True)]

    async def run_state(self, run_id: uuid.UUID) -> str | None:
        """The run's state, cached for half a second: a pause or cancel is seen within a second.

        One read per run at a time: every lane of the run waits on the same one when the cache expires.
        """
        cached = self._run_states.get(run_id)
        if cached is None or time.monotonic() - cached[0] >= self._ttl:
            if len(self._run_states) > 10_000:
                self._run_states.clear()
            cached = (time.monotonic(), asyncio.ensure_future(self._read_run_state(run_id)))
            self._run_states[run_id] = cached
        try:
            return await asyncio.shield(cached[1])
        except Exception:
            if self._run_states.get(run_id) is cached:
                del self._run_states[run_id]  # the next caller reads again
            raise

    async def _read_run_state(self, run_id: uuid.UUID) -> str | None:
        async with self._pool.acquire() as conn:
            state: str | None = await self._q.fetchval(conn, "run-state", run_id=run_id)
            return state

    @asynccontextmanager
    async def entry(self, e: Recipient, token: uuid.UUID, process_id: str, *,
                    own_connection: bool = False) -> AsyncIterator[LedgerEntry]:
        """The recipient's ledger entry, claimed and locked until the block ends (or its outcome is written).

        First sight of a recipient is claimed, locked and checked against suppressions in one statement,
        batched with other lanes' claims by the ledger writer. A redelivery (or ``own_connection``: the
        entry's work must share a transaction) takes a connection of its own, waits for the entry's lock and
        reads the entry as its previous holder left it.
        """
        key = lock_key(e.run_id, e.recipient_id)
        if self._writer is not None and not own_connection:
            first = await self._writer.claim(e, token, key)
            if first is not None:
                claimed = LedgerEntry(None, key, e, "claimed", token, first.claimed_at, suppressed=first.suppressed)
                try:
                    yield claimed
                finally:
                    if not claimed.released:
                        self._writer.release(key)
                return
        async with self._pool.acquire() as conn:
            entry: LedgerEntry | None = None
            try:
                fresh = None
                if self._writer is None or own_connection:
                    fresh = await self._q.fetchrow(conn, "claim-new", run_id=e.run_id, recipient_id=e.recipient_id,
                                                   org_id=e.org_id, sender=e.sender, to_number=e.to,
                                                   segments=e.segments, claimed_by=process_id, claim_token=token,
                                                   lock_key=key)
                if fresh is not None and fresh["locked"]:
                    entry = LedgerEntry(conn, key, e, "claimed", token, fresh["claimed_at"],
                                        suppressed=fresh["suppressed"])
                else:
                    await self._q.fetchval(conn, "lock-entry", lock_key=key)
                    held = await self._q.fetchrow(conn, "read-entry", run_id=e.run_id, recipient_id=e.recipient_id)
                    assert held is not None  # claimed before (this is not its first sight) or by claim-new just now
                    entry = LedgerEntry(conn, key, e, **dict(held))
                yield entry
            except asyncio.CancelledError:
                conn.terminate()  # the lock may be held, or half taken: the server drops it with the session
                raise
            finally:
                if entry is not None and not entry.released and not conn.is_closed():
                    await self._unlock(conn, key)

    async def _unlock(self, conn: Connection, key: int) -> None:
        # A pooled connection is never reset: one still holding a lock must not go back to the pool.
        try:
            await self._q.fetchval(conn, "unlock-entry", lock_key=key)
        except BaseException:
            conn.terminate()
            raise

    async def reclaim(self, entry: LedgerEntry, token: uuid.UUID, process_id: str) -> None:
        """A redelivered entry (always on its own connection) is claimed again by this attempt."""
        e = entry.event
        assert entry.conn is not None
        await self._q.execute(entry.conn, "reclaim", run_id=e.run_id, recipient_id=e.recipient_id,
                              claim_token=token, claimed_by=process_id)
        entry.claim_token = token

    async def record_sent(self, entry: LedgerEntry, sid: str, status: str, segments: int,
                          price: Decimal | None, sent_at: float) -> None:
        """Writes the outcome and unlocks the entry."""
        twilio_status = status if status != "adopted" else None
        await self._record(entry, Outcome("sent", sid, twilio_status, segments, price, sent_at), "record-sent",
                           message_sid=sid, twilio_status=twilio_status, segments=segments, price=price,
                           sent_at=sent_at)

    async def record_final(self, entry: LedgerEntry, state: SendOutcome, code: int | None,
                           reason: str | None = None) -> None:
        """Writes an outcome without a message and unlocks the entry."""
        await self._record(entry, Outcome(state, error_code=code, reason=reason), "record-final",
                           state=state, error_code=code, reason=reason)

    async def _record(self, entry: LedgerEntry, outcome: Outcome, query: str, **values: object) -> None:
        e = entry.event
        if entry.conn is None:
            assert self._writer is not None
            entry.released = True  # written or not, the writer's statement unlocks it
            await self._writer.record(e, entry.claim_token, entry.key, outcome)
        else:
            await self._q.fetchval(entry.conn, query, run_id=e.run_id, recipient_id=e.recipient_id,
                                   lock_key=entry.key, **values)
            entry.released = True

    async def take_held(self, entry: LedgerEntry, token: uuid.UUID, process_id: str) -> None:
        """A held entry (always read on its own connection) is claimed by this attempt, with no reconciling."""
        e = entry.event
        assert entry.conn is not None
        claimed_at = await holds.QUERIES.fetchval(entry.conn, "take-held", run_id=e.run_id, recipient_id=e.recipient_id,
                                                  claim_token=token, claimed_by=process_id)
        entry.state, entry.claim_token, entry.claimed_at = "claimed", token, claimed_at

    async def hold(self, entry: LedgerEntry, until: datetime) -> None:
        """Hold the entry until ``until`` (holds.py releases it then) and unlock it."""
        e = entry.event
        values = {"run_id": e.run_id, "recipient_id": e.recipient_id, "held_until": until}
        if entry.conn is not None:
            await holds.QUERIES.execute(entry.conn, "set-hold", **values)
        else:
            async with self._pool.acquire() as conn:
                await holds.QUERIES.execute(conn, "set-hold", **values)
        await self._record(entry, Outcome("held"), "record-final", state="held", error_code=None, reason=None)

    async def refresh_run_counts(self, run_id: uuid.UUID) -> None:
        """Recount the run from its ledger; when that completes it, its campaign follows, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            await run_endings.lock_campaign_of_run(conn, run_id)
            if await self._q.fetchval(conn, "refresh-run-counts", run_id=run_id) in run_endings.RUN_ENDED:
                await run_endings.follow_run(conn, run_id, actor="dispatcher")

    async def is_suppressed(self, e: Recipient) -> bool:
        async with self._pool.acquire() as conn:
            suppressed: bool = await self._q.fetchval(conn, "is-suppressed", org_id=e.org_id, phone=e.to,
                                                      sender=e.sender)
            return suppressed

    async def suppress(self, e: Recipient) -> None:
        async with self._pool.acquire() as conn:
            await self._q.execute(conn, "suppress", org_id=e.org_id, phone=e.to, sender=e.sender)

    async def mark_bad_number(self, e: Recipient, code: int) -> None:
        async with self._pool.acquire() as conn:
            await self._q.execute(conn, "mark-bad-number", org_id=e.org_id, phone=e.to, error_code=code)

    async def recent_outcomes(self, run_id: uuid.UUID, window: int) -> tuple[int, int]:
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "recent-outcomes", run_id=run_id, window=window)
        assert row is not None  # an aggregate: always one row
        return row["failed"], row["total"]

    async def pause_run(self, run_id: uuid.UUID, reason: RunReason) -> None:
        async with self._pool.acquire() as conn:
            await self._q.execute(conn, "pause-run", run_id=run_id, **run_reasons.columns(reason))
        self._run_states.pop(run_id, None)

    async def cap_policy(self, org_id: uuid.UUID, verification: str) -> CapPolicy | None:
        key = (org_id, verification)
        cached = self._policies.get(key)
        if cached is None or time.monotonic() - cached[0] > 60:
            async with self._pool.acquire() as conn:
                cached = (time.monotonic(), await sender_volume.cap_policy(conn, org_id, verification))
            self._policies[key] = cached
        return cached[1]

    async def reserve_volume(self, conn: Connection, sender: str, segments: int,
                             limits: dict[str, int], now: datetime) -> str | None:
        """Add ``segments`` to the sender's current periods unless a cap would pass; return that period."""
        return await sender_volume.reserve_volume(conn, sender, segments, limits, now)

    async def refuse_run(self, run_id: uuid.UUID, reason: RunReason) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await run_endings.lock_campaign_of_run(conn, run_id)
            await self._q.execute(conn, "refuse-run", run_id=run_id, **run_reasons.columns(reason))
            await run_endings.follow_run(conn, run_id, actor="dispatcher")
        self._run_states.pop(run_id, None)

    async def recent_sends(self, sender: str) -> list[tuple[float, int]]:
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "recent-sends", sender=sender, now=self._now())
        return [(r["anchor"], r["segments"]) for r in rows]

    async def account(self, org_id: uuid.UUID, secrets: SecretStore) -> AccountRow | None:
        """The organisation's Twilio login, decrypted, and where status callbacks go; None without an account."""
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "account", org_id=org_id)
            if row is None:
                return None
            return AccountRow(await open_twilio_login(conn, secrets, org_id, row), row["webhook_base_url"],
                              row["alpha_sender_id"])

    async def sender_rate(self, org_id: uuid.UUID, address: str) -> tuple[str, float] | None:
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "sender", org_id=org_id, address=address)
        return (row["verification"], row["segments_per_second"]) if row else None

    async def sender_rates(self, senders: list[tuple[uuid.UUID, str]]
                           ) -> dict[tuple[uuid.UUID, str], tuple[str, float]]:
        """``sender_rate`` for many (organisation, address) pairs in one statement; a deleted sender is left out."""
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "senders-batch", org_ids=[o for o, _ in senders],
                                       addresses=[a for _, a in senders])
        return {(r["org_id"], r["address"]): (r["verification"], r["segments_per_second"]) for r in rows}
