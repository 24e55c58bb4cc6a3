"""The outbox sampler: how many alert e-mails, iMIS write-backs and outbox events wait, and since when.

Every ``poll_s`` one statement (backlog.sql) sets ``textpulse_outbox_backlog`` and
``textpulse_outbox_oldest_seconds`` for each outbox, so a Prometheus scrape costs no query. While
PostgreSQL is away the gauges keep their last values and the sampler waits (polling.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from libs.common import metrics
from libs.common.db import Queries
from libs.common.polling import poll_forever

QUERIES = Queries.load(Path(__file__).with_name("backlog.sql"))


@dataclass(frozen=True, slots=True)
class BacklogTuning:
    poll_s: float = 15.0


class BacklogSampler:
    def __init__(self, pool: asyncpg.Pool, *, tuning: BacklogTuning = BacklogTuning()) -> None:
        self._pool = pool
        self._tuning = tuning

    async def run(self) -> None:
        """Sample every ``poll_s`` until cancelled."""
        await poll_forever(self.sample, stalled="backlog.stalled", poll_s=self._tuning.poll_s)

    async def sample(self) -> dict[str, tuple[int, float]]:
        """Set the gauges; returns each outbox's (rows waiting, age of the oldest in seconds)."""
        async with self._pool.acquire() as conn:
            rows = await QUERIES.fetch(conn, "outbox-backlogs")
        sampled = {row["outbox"]: (row["rows"], row["oldest_s"]) for row in rows}
        for outbox, (waiting, oldest_s) in sampled.items():
            metrics.OUTBOX_BACKLOG.labels(outbox).set(waiting)
            metrics.OUTBOX_OLDEST_SECONDS.labels(outbox).set(oldest_s)
        return sampled
