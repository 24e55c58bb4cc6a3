"""The worker that applies stored webhooks, and the sweep that reconciles early status callbacks.

Contract:

- Rows are claimed in batches (oldest first, ``FOR UPDATE SKIP LOCKED``, so processes share the work)
  and each is handled inside its own savepoint of the batch's transaction: its effects, its events and
  its iMIS jobs commit together with its ``state = 'done'``, or not at all.
- A PermanentError (a required field missing) marks the row ``failed`` with the reason: never retried.
- Any other exception (a handler bug, a constraint) retries the row with a growing delay, up to
  ``max_attempts``; then it is ``failed`` with the error, logged with its traceback, and the worker goes on.
- PostgreSQL being unreachable stalls the worker (logged, backed off) without losing anything: the rows
  stay pending.
- The webhook routes set ``wake`` after each insert, so a STOP is applied within milliseconds; a poll
  every ``poll_s`` covers rows stored by other processes and rows waiting for a retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from libs.common.db import Connection, transaction
from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE
from libs.common.polling import drain, poll_forever
from services.optout.db import WebhookResult, WebhookRow
from services.optout.handlers import HandlerDeps, apply_batch, apply_callbacks

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessorTuning:
    batch: int = 50
    poll_s: float = 0.5
    max_attempts: int = 5
    retry_base_s: float = 1.0
    reconcile_every_s: float = 5.0
    # While PostgreSQL is away the worker tries again at most this often: a STOP that waited out an
    # outage in Kafka is applied within about this long of PostgreSQL coming back.
    max_stall_s: float = 1.0


class WebhookProcessor:
    def __init__(
        self,
        pool: asyncpg.Pool,
        deps: HandlerDeps,
        *,
        wake: asyncio.Event,
        on_committed: Callable[[], None] = lambda: None,
        tuning: ProcessorTuning = ProcessorTuning(),
    ) -> None:
        self._pool = pool
        self._deps = deps
        self._wake = wake
        self._on_committed = on_committed
        self._tuning = tuning
        self._next_sweep = 0.0

    async def run(self) -> None:
        """Process until cancelled; a database outage is waited out."""
        await poll_forever(self._pass, stalled="webhooks.processing_stalled", poll_s=self._tuning.poll_s,
                           wake=self._wake, first_stall_s=0.2, max_stall_s=self._tuning.max_stall_s)

    async def _pass(self) -> None:
        await drain(self.process_batch, self._tuning.batch)
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_sweep:
            await self.reconcile()
            self._next_sweep = loop.time() + self._tuning.reconcile_every_s

    async def process_batch(self) -> int:
        """Claim and apply one batch; returns how many rows it claimed."""
        db = self._deps.db
        async with transaction(self._pool) as conn:
            if not await db.try_processor_lock(conn):
                return 0  # another process is applying webhooks; this one only stores them meanwhile
            rows = await db.claim_webhooks(conn, self._tuning.batch)
            if not rows:
                return 0
            try:
                async with conn.transaction():  # a savepoint: if the batch fails, apply row by row
                    results = await apply_batch(conn, rows, self._deps)
            except POSTGRES_RETRYABLE:
                raise
            except Exception:  # noqa: BLE001 - isolate the row that fails; the others go through
                log.warning("webhooks.batch_failed", extra={"rows": len(rows)}, exc_info=True)
                results = [r for row in rows if (r := await self._process_alone(conn, row)) is not None]
            await db.finish_webhooks(conn, results)
        self._on_committed()
        return len(rows)

    async def _process_alone(self, conn: Connection, row: WebhookRow) -> WebhookResult | None:
        """Apply one row in its own savepoint; on failure schedule a retry (None) or give up (failed)."""
        try:
            async with conn.transaction():
                return (await apply_batch(conn, [row], self._deps))[0]
        except POSTGRES_RETRYABLE:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried, then failed visibly
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if row.attempts + 1 >= self._tuning.max_attempts:
                log.exception("webhook.failed", extra={"webhook_id": row.id, "kind": row.kind})
                return WebhookResult(row.id, "failed", "processing_failed", error)
            log.warning("webhook.retrying", extra={"webhook_id": row.id, "kind": row.kind, "error": error})
            delay = self._tuning.retry_base_s * 2**row.attempts
            await self._deps.db.retry_webhook(conn, row.id, error=error, delay_s=delay)
            return None

    async def reconcile(self) -> int:
        """Apply callbacks that arrived before their SID was in the ledger; returns how many matched now."""
        async with transaction(self._pool) as conn:
            callbacks = await self._deps.db.unmatched_callbacks_now_known(conn, 500)
            await apply_callbacks(conn, self._deps.db, callbacks)
        if callbacks:
            log.info("status.reconciled", extra={"callbacks": len(callbacks)})
        return len(callbacks)
