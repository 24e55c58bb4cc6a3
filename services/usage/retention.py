"""The retention pruner: deletes or blanks what members sent and what was rendered for them once each
organisation's retention setting has passed (migration 0027; admins change it in Settings, general).

Every ``poll_s`` one pass walks every organisation and each kind of row, in batches of ``batch`` rows,
each batch one short statement of its own (services/usage/retention.sql), until a batch comes back short.
The pass logs ``retention.pruned`` with how many rows went from each table. Counts, the usage rollups,
suppressions and consent history are never pruned; the rows that carry counts (a reply, a snapshot row,
an upload) are blanked rather than deleted.

    rule (setting)                 table                                 what happens
    raw webhooks (webhook_days)    webhook_requests (processed)          deleted
                                   status_callbacks                      deleted
                                   usage_pending_statuses                deleted
                                   webhook_events and their deliveries   deleted, once no delivery is pending
    replies (reply_days)           inbound_messages.body                 blanked
    rendered (body_days)           run_recipients.body, .merge_values    blanked, runs ended that long ago
                                   one_off_texts.body (inbox replies)    blanked, once sent or not sent
    CSV rows (csv_days)            csv_upload_rows                       deleted, unless a campaign may use it
                                   csv_upload_rejections.raw             blanked
    outbox (outbox_days, global)   event_outbox (published or refused)   deleted
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from libs.common.db import Queries
from libs.common.logging import get_logger
from libs.common.polling import poll_forever

log = get_logger(__name__)

QUERIES = Queries.load(Path(__file__).with_name("retention.sql"))

# (table reported, query, organisation setting it reads)
_AGED_ROWS = (
    ("webhook_requests", "prune-webhook-requests", "retention_webhook_days"),
    ("status_callbacks", "prune-status-callbacks", "retention_webhook_days"),
    ("usage_pending_statuses", "prune-pending-statuses", "retention_webhook_days"),
    ("webhook_events", "prune-webhook-events", "retention_webhook_days"),
    ("inbound_messages", "blank-replies", "retention_reply_days"),
    ("one_off_texts", "blank-one-off-texts", "retention_body_days"),
)


@dataclass(frozen=True, slots=True)
class RetentionTuning:
    poll_s: float = 3600.0
    batch: int = 1000
    outbox_days: int = 7


class RetentionPruner:
    def __init__(self, pool: asyncpg.Pool, *, tuning: RetentionTuning = RetentionTuning()) -> None:
        self._pool = pool
        self._tuning = tuning

    async def run(self) -> None:
        """Prune every ``poll_s`` until cancelled; a database outage only delays it."""
        await poll_forever(self.prune, stalled="retention.stalled", poll_s=self._tuning.poll_s)

    async def prune(self) -> Counter[str]:
        """One pass over every organisation; returns (and logs) the rows pruned per table."""
        pruned: Counter[str] = Counter()
        async with self._pool.acquire() as conn:
            organisations = await QUERIES.fetch(conn, "retention-settings")
        for org in organisations:
            for table, query, setting in _AGED_ROWS:
                pruned[table] += await self._drain(query, org_id=org["org_id"], days=org[setting])
            pruned["run_recipients"] += await self._prune_runs(org)
            await self._prune_uploads(org, pruned)
        pruned["event_outbox"] += await self._drain("prune-outbox", days=self._tuning.outbox_days)
        log.info("retention.pruned", extra={**dict(sorted(pruned.items())), "rows": sum(pruned.values())})
        return pruned

    async def _prune_runs(self, org: asyncpg.Record) -> int:
        blanked = 0
        while True:
            async with self._pool.acquire() as conn:
                runs = await QUERIES.fetch(conn, "runs-with-content", org_id=org["org_id"],
                                           days=org["retention_body_days"], batch=self._tuning.batch)
            for run in runs:
                blanked += await self._drain("blank-run-content", run_id=run["run_id"])
                async with self._pool.acquire() as conn:
                    await QUERIES.execute(conn, "mark-run-content-pruned", run_id=run["run_id"])
            if len(runs) < self._tuning.batch:
                return blanked

    async def _prune_uploads(self, org: asyncpg.Record, pruned: Counter[str]) -> None:
        while True:
            async with self._pool.acquire() as conn:
                uploads = await QUERIES.fetch(conn, "uploads-with-rows", org_id=org["org_id"],
                                              days=org["retention_csv_days"], batch=self._tuning.batch)
            for upload in uploads:
                pruned["csv_upload_rows"] += await self._drain("prune-upload-rows", upload_id=upload["upload_id"])
                pruned["csv_upload_rejections"] += await self._drain("blank-upload-rejections",
                                                                     upload_id=upload["upload_id"])
                async with self._pool.acquire() as conn:
                    await QUERIES.execute(conn, "mark-upload-rows-pruned", upload_id=upload["upload_id"])
            if len(uploads) < self._tuning.batch:
                return

    async def _drain(self, query: str, **values: Any) -> int:
        """Run one batch statement until it takes fewer than a batch; each run is its own transaction."""
        total = 0
        while True:
            async with self._pool.acquire() as conn:
                taken: int = await QUERIES.fetchval(conn, query, batch=self._tuning.batch, **values)
            total += taken
            if taken < self._tuning.batch:
                return total
