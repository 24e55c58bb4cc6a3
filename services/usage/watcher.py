"""The alert watcher: raises alerts for runs that stopped badly and for an iMIS write-back that is stuck.

Other services record what happened in their own rows (the dispatcher pauses a run with the reason
``failure_threshold``, the scheduler marks it ``missed``, ...); the watcher polls for runs in an
alertable state it has not looked at in that state and reason, raises the alert ``classify_run``
names from the reason's code and facts (:mod:`libs.common.run_reasons`), and records that it looked
(``run_alert_marks``), in one transaction per run. A paused run is looked at again once its reminder is
due; ``raise_alert``'s quiet period decides whether it is e-mailed.

Every ``writeback_every_s`` it also looks for organisations whose iMIS write-back jobs have been
pending longer than ``writeback_stuck_s``, and raises one alert per organisation (a reminder a day).
Every ``signatures_every_s`` it looks for organisations whose webhooks keep failing signature
validation (``FailingSignaturesRule``), and raises one alert per organisation (a reminder a day).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from libs.common.alerts import AlertKind, raise_alert
from libs.common.db import Connection, transaction
from libs.common.errors import PermanentError
from libs.common.logging import get_logger
from libs.common.polling import drain, poll_forever
from libs.common.run_reasons import RunReason
from services.usage import db
from services.usage.conditions import FailingSignaturesRule, classify_run, run_dedupe_key

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WatcherTuning:
    poll_s: float = 5.0
    batch: int = 100
    horizon_days: int = 30
    reminder_s: float = 24 * 3600.0
    writeback_every_s: float = 300.0
    writeback_stuck_s: float = 3600.0
    signatures_every_s: float = 60.0
    failing_signatures: FailingSignaturesRule = FailingSignaturesRule()


class AlertWatcher:
    def __init__(self, pool: asyncpg.Pool, *, base_url: str, tuning: WatcherTuning = WatcherTuning()) -> None:
        self._pool = pool
        self._base_url = base_url
        self._tuning = tuning
        self._next_writeback_check = 0.0
        self._next_signature_check = 0.0

    async def run(self) -> None:
        """Watch until cancelled; a database outage only delays it."""
        await poll_forever(self._pass, stalled="alert_watcher.stalled", poll_s=self._tuning.poll_s)

    async def _pass(self) -> None:
        await drain(self.check_runs, self._tuning.batch)
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_writeback_check:
            await self.check_writebacks()
            self._next_writeback_check = loop.time() + self._tuning.writeback_every_s
        if loop.time() >= self._next_signature_check:
            await self.check_signatures()
            self._next_signature_check = loop.time() + self._tuning.signatures_every_s

    async def check_runs(self) -> int:
        """Raise the alerts of one batch of runs; returns how many runs were looked at."""
        t = self._tuning
        async with self._pool.acquire() as conn:
            runs = await db.runs_to_alert(conn, horizon_days=t.horizon_days, reminder_s=t.reminder_s, limit=t.batch)
        for run in runs:
            try:
                async with transaction(self._pool) as conn:
                    kind = await self._alert_run(conn, run)
                    await db.mark_run(conn, run["run_id"], run["state"], run["state_reason"], kind)
            except PermanentError as exc:
                # A bug (a template missing a figure) or a run deleted meanwhile: marked, so it is not
                # retried every poll; the error is in the log.
                log.error("run_alert.failed", extra={"run_id": str(run["run_id"]), "code": exc.code, "error": str(exc)})
                async with transaction(self._pool) as conn:
                    await db.mark_run(conn, run["run_id"], run["state"], run["state_reason"], None)
        return len(runs)

    async def _alert_run(self, conn: Connection, run: asyncpg.Record) -> str | None:
        reason = RunReason.from_stored(run["state_reason_code"], run["state_reason_detail"])
        kind = classify_run(run["state"], reason, sent=run["sent"])
        if kind is None:
            return None
        context = await self._context(conn, kind, run, reason)
        await raise_alert(conn, run["org_id"], kind, run_dedupe_key(run["run_id"], kind), context,
                          base_url=self._base_url, run_id=run["run_id"])
        log.info("run_alert.checked", extra={"run_id": str(run["run_id"]), "state": run["state"], "kind": kind.value})
        return kind.value

    async def _context(self, conn: Connection, kind: AlertKind, run: asyncpg.Record,
                       reason: RunReason | None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "reason": run["state_reason"], "occurrence_at": run["occurrence_at"], "targeted": run["targeted"],
            "sent": run["sent"], "delivered": run["delivered"], "failed": run["failed"], "segments": run["segments"],
            "cost": run["cost"], "actual_cost": run["actual_cost"], "cost_provisional": run["cost_provisional"],
        }
        if kind is AlertKind.SEGMENT_LIMIT:
            context |= {"segment_limit": run["segment_limit"], "account_max_segments": run["account_max_segments"]}
        elif kind is AlertKind.FAILURE_THRESHOLD:
            context["top_errors"] = await db.run_top_errors(conn, run["run_id"])
        elif kind in (AlertKind.TWILIO_REFUSED, AlertKind.TWILIO_AUTH):
            context["error_code"] = reason and reason.error_code
        elif kind is AlertKind.TOLL_FREE_RESTRICTED:
            context |= {"sender": reason and reason.sender, "verification": reason and reason.verification,
                        "cap_reached": reason is not None and reason.code == "toll_free_cap"}
        return context

    async def check_writebacks(self) -> int:
        """Alert each organisation whose iMIS write-back has been stuck; returns how many were found."""
        async with self._pool.acquire() as conn:
            stuck = await db.stuck_writebacks(conn, stuck_s=self._tuning.writeback_stuck_s)
        for row in stuck:
            async with transaction(self._pool) as conn:
                await raise_alert(conn, row["org_id"], AlertKind.WRITEBACK_STUCK, "imis_writeback_stuck",
                                  {"pending": row["pending"], "oldest_at": row["oldest_at"],
                                   "last_error": row["last_error"]},
                                  base_url=self._base_url)
        return len(stuck)

    async def check_signatures(self) -> int:
        """Alert each organisation whose webhooks keep failing signature validation; returns how many."""
        rule = self._tuning.failing_signatures
        async with self._pool.acquire() as conn:
            failing = await db.failing_webhook_signatures(conn, window_s=rule.window_s, threshold=rule.threshold)
        for row in failing:
            async with transaction(self._pool) as conn:
                await raise_alert(conn, row["org_id"], AlertKind.WEBHOOK_SIGNATURES_FAILING,
                                  "webhook_signatures_failing",
                                  {"refusals": row["refusals"], "last_url": row["last_url"],
                                   "window_minutes": rule.window_minutes},
                                  base_url=self._base_url)
            log.warning("webhook_signatures.failing", extra={"org_id": str(row["org_id"]),
                                                             "refusals": row["refusals"]})
        return len(failing)
