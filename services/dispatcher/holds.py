"""Held recipients go back to the recipients topic when their window opens.

A hold is a ledger row (``state = 'held'``, ``held_until``), so it survives restarts and is seen by every
dispatcher process; the Kafka record that brought it is finished. Each process runs a releaser: every few
seconds it takes the held entries that are due (``SKIP LOCKED``, so two releasers never take the same
ones), publishes their events again, keyed by sender as the audience service does, and marks them
released in the same transaction. A crash between the publish and the commit publishes them again later;
the ledger still sends each once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from libs.common.db import Queries
from libs.common.events import Recipient
from libs.common.kafka import EventPublisher
from libs.common.logging import get_logger
from libs.common.outages import is_outage
from libs.common.topics import RECIPIENTS
from services.dispatcher.clock import Clock

log = get_logger(__name__)
QUERIES = Queries.load(Path(__file__).with_name("holds.sql"))


class HoldReleaser:
    def __init__(self, pool: asyncpg.Pool, publisher: EventPublisher, *, clock: Clock, interval_s: float = 5.0,
                 batch: int = 500) -> None:
        self._pool = pool
        self._publisher = publisher
        self._clock = clock
        self._interval_s = interval_s
        self._batch = batch

    async def run(self) -> None:
        while True:
            try:
                released = await self.release_due()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("holds.release_failed", extra={"error": repr(exc)[:300]})
                released = 0
            if released < self._batch:
                await self._clock.sleep(self._interval_s)

    async def release_due(self) -> int:
        """Publish the held entries that are due (one batch); how many were released."""
        now = datetime.fromtimestamp(self._clock.time(), UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await QUERIES.fetch(conn, "due-holds", now=now, batch=self._batch)
            for row in rows:
                event = Recipient(org_id=row["org_id"], campaign_id=row["campaign_id"], run_id=row["run_id"],
                                  recipient_id=row["recipient_id"], sender=row["sender"], to=row["e164"],
                                  body=row["body"], segments=row["segments"],
                                  validity_period_s=row["validity_period_s"])
                await self._publisher.publish(RECIPIENTS, event, key=event.sender)
            if rows:
                await QUERIES.execute(conn, "mark-released", now=now, run_ids=[r["run_id"] for r in rows],
                                      recipient_ids=[r["recipient_id"] for r in rows])
        if rows:
            log.info("holds.released", extra={"count": len(rows)})
        return len(rows)
