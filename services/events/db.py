"""The events service's PostgreSQL access (migration 0054): events stored with their deliveries, and the
deliveries worked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import asyncpg

from libs.common.db import Connection, Queries, transaction
from libs.common.outgoing_events import OutgoingEvent

QUERIES: Final = Queries.load(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True)
class Due:
    """A delivery claimed for one attempt."""

    id: int
    org_id: uuid.UUID
    attempts: int
    retry_until: datetime
    url: str
    secret: str  # sealed
    event_id: uuid.UUID
    type: str
    body: str


class EventStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def store(self, events: list[OutgoingEvent], *, mark_run: uuid.UUID | None = None) -> int:
        """Store each event once with a delivery per subscribed endpoint, in one transaction; the new ones.
        ``mark_run``: the run these events announce, marked announced in the same transaction."""
        stored = 0
        async with transaction(self.pool) as conn:
            if mark_run is not None:
                await QUERIES.execute(conn, "mark-run-announced", run_id=mark_run)
            for event in events:
                if not await QUERIES.fetchval(conn, "subscribed", org_id=event.org_id, type=event.type):
                    continue
                if await QUERIES.fetchval(conn, "store-event", id=event.id, org_id=event.org_id, type=event.type,
                                          member_key=event.member_key, body=event.body(),
                                          occurred_at=event.occurred_at):
                    await QUERIES.execute(conn, "queue-deliveries", event_id=event.id, member_key=event.member_key,
                                          org_id=event.org_id, type=event.type)
                    stored += 1
        return stored

    async def message_by_sid(self, message_sid: str) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            return await QUERIES.fetchrow(conn, "message-by-sid", message_sid=message_sid)

    async def phone_of(self, run_id: uuid.UUID, recipient_id: uuid.UUID) -> str | None:
        async with self.pool.acquire() as conn:
            phone: str | None = await QUERIES.fetchval(conn, "message-by-recipient", run_id=run_id,
                                                       recipient_id=recipient_id)
            return phone

    async def claim_due(self, conn: Connection, *, batch: int, lease_s: float) -> list[Due]:
        return [Due(**dict(row)) for row in await QUERIES.fetch(conn, "claim-due", batch=batch, lease_s=lease_s)]

    async def delivered(self, delivery_id: int, status: int) -> None:
        async with self.pool.acquire() as conn:
            await QUERIES.execute(conn, "delivered", id=delivery_id, status=status)

    async def attempt_failed(self, delivery_id: int, status: int | None, error: str,
                             next_attempt_at: datetime) -> bool:
        """Record a failed attempt; True when the delivery is now failed for good."""
        async with self.pool.acquire() as conn:
            return bool(await QUERIES.fetchval(conn, "attempt-failed", id=delivery_id, status=status,
                                               error=error[:500], next_attempt_at=next_attempt_at))
