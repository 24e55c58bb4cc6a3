"""Publishes ``event_outbox`` rows to Kafka: the events the processor (or the API) wrote with their change.

At-least-once, in order: one relay holds an advisory lock per batch, sends the batch in id order
(aiokafka keeps the order per partition, and the idempotent producer keeps it across retries), waits
for every ack, then marks the rows published in the same transaction. A crash or a broker outage
between the acks and the commit sends those events again; consumers are idempotent. A row that is not
a valid event for its topic is marked with its error and skipped, so it can be looked at, not lost.
"""

from __future__ import annotations

import asyncio

import asyncpg

from libs.common.db import Connection, transaction
from libs.common.errors import PermanentError
from libs.common.kafka import EventPublisher, decode_event
from libs.common.logging import get_logger
from libs.common.polling import drain, poll_forever
from libs.common.topics import ALL_TOPICS
from services.optout.db import OptoutDb, OutboxEvent

log = get_logger(__name__)

_SPECS = {spec.name: spec for spec in ALL_TOPICS}


class EventRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        db: OptoutDb,
        publisher: EventPublisher,
        *,
        wake: asyncio.Event,
        poll_s: float = 0.5,
        batch: int = 100,
    ) -> None:
        self._pool = pool
        self._db = db
        self._publisher = publisher
        self._wake = wake
        self._poll_s = poll_s
        self._batch = batch

    async def run(self) -> None:
        """Relay until cancelled; a broker or database outage is waited out."""
        await poll_forever(lambda: drain(self.relay_batch, self._batch), stalled="events.relay_stalled",
                           poll_s=self._poll_s, wake=self._wake, first_stall_s=0.2)

    async def relay_batch(self) -> int:
        """Publish one batch; returns how many rows it took (0 when another relay holds the lock)."""
        async with transaction(self._pool) as conn:
            if not await self._db.try_relay_lock(conn):
                return 0
            rows = await self._db.unpublished_events(conn, self._batch)
            if not rows:
                return 0
            sends, published = [], []
            for row in rows:
                try:
                    spec = _SPECS[row.topic]
                    event = decode_event(spec, row.payload.encode())
                except (KeyError, PermanentError) as exc:
                    await self._reject(conn, row, exc)
                    continue
                sends.append(self._publisher.publish(spec, event, key=row.key))
                published.append(row.id)
            await asyncio.gather(*sends)
            await self._db.mark_events_published(conn, published)
        return len(rows)

    async def _reject(self, conn: Connection, row: OutboxEvent, exc: Exception) -> None:
        error = f"unknown topic {row.topic}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        log.error("event_outbox.unpublishable", extra={"outbox_id": row.id, "topic": row.topic, "error": error})
        await self._db.mark_event_unpublishable(conn, row.id, error[:2000])
