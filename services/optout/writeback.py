"""The iMIS write-back worker: drains ``imis_outbox`` into each organisation's write-back target.

Where a job lands (a TEXTUNSUB activity, a communication preference or the TP_SmsPreferences panel) is
decided in ``writeback_targets.py``. A job is claimed (a lease, so a dead worker's job comes back), written
outside any transaction, then recorded:

- done: iMIS accepted the write;
- pending with ``last_error`` and a later ``next_attempt_at``: a DependencyUnavailable, retried with
  exponential back-off (``retry_delay``) until ``max_attempts``;
- failed with ``last_error``: a PermanentError, no iMIS account, or attempts exhausted. The dashboard
  lists pending and failed jobs; suppression never waits for iMIS (Textpulse's table is the authority).

Each organisation with due jobs gets a lane of its own: a task that claims that organisation's jobs and
writes them one at a time (ASI's guidelines ask for single-threaded clients), one member's jobs in order,
until none is due. Lanes run concurrently (up to ``max_lanes``), so one slow or failing iMIS never delays
another organisation's write-backs.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import asyncpg
import httpx

from libs.common.backoff import retry_delay
from libs.common.db import Connection
from libs.common.envelope import SecretUnreadable
from libs.common.errors import PermanentError, RetryableError
from libs.common.imis import ImisSession
from libs.common.logging import get_logger, mask_phone
from libs.common.polling import poll_forever, until_available
from services.optout.db import ImisAccount, ImisJob, OptoutDb
from services.optout.writeback_targets import write_back

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WritebackTuning:
    batch: int = 20
    poll_s: float = 1.0
    lease_s: float = 120.0
    max_attempts: int = 25  # with the 1 h cap: about a day of trying
    max_lanes: int = 50  # organisations written to at once
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0


class WritebackWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        db: OptoutDb,
        http: httpx.AsyncClient,
        *,
        default_base_url: str,
        wake: asyncio.Event,
        tuning: WritebackTuning = WritebackTuning(),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._pool = pool
        self._db = db
        self._http = http
        self._default_base_url = default_base_url
        self._wake = wake
        self._tuning = tuning
        self._jitter = jitter
        # One session (and so one cached token) per iMIS site and user; a changed password is a new session.
        self._sessions: dict[tuple[str, str, str], ImisSession] = {}
        self._lanes: dict[UUID, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Work until cancelled; a database outage is waited out."""
        try:
            await poll_forever(self.start_lanes, stalled="imis_writeback.stalled", poll_s=self._tuning.poll_s,
                               wake=self._wake)
        finally:
            for lane in list(self._lanes.values()):
                lane.cancel()
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def start_lanes(self) -> list[UUID]:
        """Start a lane for each organisation with due jobs and none running; returns those started."""
        room = self._tuning.max_lanes - len(self._lanes)
        if room <= 0:
            return []
        async with self._pool.acquire() as conn:
            due = await self._db.due_imis_orgs(conn, busy=list(self._lanes))
        started = due[:room]
        for org_id in started:
            self._lanes[org_id] = asyncio.create_task(self._lane(org_id), name=f"imis-writeback-{org_id}")
        return started

    async def _lane(self, org_id: UUID) -> None:
        try:
            while await self.run_org_once(org_id):
                pass
        except Exception:
            # Its claimed jobs come back when their lease runs out; other lanes carry on.
            log.exception("imis_writeback.lane_failed", extra={"org_id": str(org_id)})
        finally:
            self._lanes.pop(org_id, None)

    async def run_org_once(self, org_id: UUID) -> int:
        """Claim one batch of the organisation's due jobs and attempt each in turn; returns how many."""
        claim = functools.partial(self._db.claim_imis_jobs, org_id=org_id, limit=self._tuning.batch,
                                  lease_s=self._tuning.lease_s)
        jobs = await self._stored(claim) or []
        if jobs:
            account = await self._stored(functools.partial(self._account, org_id=org_id))
            for job in jobs:
                await self._attempt(job, account)
        return len(jobs)

    async def _account(self, conn: Connection, *, org_id: UUID) -> ImisAccount | SecretUnreadable | None:
        try:
            return await self._db.imis_account(conn, org_id)
        except SecretUnreadable as exc:
            return exc

    async def _stored(self, write: Callable[[Connection], Awaitable[T]]) -> T | None:
        """Run ``write`` on a pooled connection, waiting out a PostgreSQL outage: the batch's jobs are claimed
        (and one may be written to iMIS already), so waiting here is sooner than waiting for their lease."""

        async def once() -> T:
            async with self._pool.acquire() as conn:
                return await write(conn)

        return await until_available(once, stalled="imis_writeback.stalled")

    async def _attempt(self, job: ImisJob, account: ImisAccount | SecretUnreadable | None) -> None:
        fields = {"job_id": job.id, "org_id": str(job.org_id), "member_id": job.member_id,
                  "phone": mask_phone(job.phone), "action": job.action, "attempt": job.attempts}
        try:
            if isinstance(account, SecretUnreadable):
                # A key this process lacks (a rotation half done, a wrong TEXTPULSE_SECRET_KEY) is put right by
                # an operator: retried with back-off, as an unreachable iMIS is, rather than dropped.
                raise RetryableError(account.code, account.message)
            if account is None or not account.writeback_enabled:
                raise PermanentError("imis_account_missing", "the organisation has no iMIS write-back set up")
            how = await write_back(self._session(account), account, job)
        except RetryableError as exc:
            error = f"{exc.code}: {exc.message}"[:2000]
            if job.attempts >= self._tuning.max_attempts:
                gave_up = f"gave up after {job.attempts} attempts: {error}"
                await self._stored(lambda conn: self._db.fail_imis_job(conn, job.id, error=gave_up))
                log.error("imis_writeback.gave_up", extra={**fields, "code": exc.code})
                return
            delay = retry_delay(job.attempts, base_s=self._tuning.retry_base_s, cap_s=self._tuning.retry_cap_s,
                                jitter=self._jitter())
            await self._stored(lambda conn: self._db.retry_imis_job(conn, job.id, error=error, delay_s=delay))
            log.warning("imis_writeback.retrying", extra={**fields, "code": exc.code, "delay_s": round(delay, 1)})
            return
        except PermanentError as exc:
            failed = f"{exc.code}: {exc.message}"[:2000]
            await self._stored(lambda conn: self._db.fail_imis_job(conn, job.id, error=failed))
            log.error("imis_writeback.failed", extra={**fields, "code": exc.code})
            return
        await self._stored(lambda conn: self._db.complete_imis_job(conn, job.id))
        log.info("imis_writeback.succeeded", extra={**fields, "write": how})

    def _session(self, account: ImisAccount) -> ImisSession:
        base_url = account.base_url or self._default_base_url
        key = (base_url, account.username, account.password)
        session = self._sessions.get(key)
        if session is None:
            session = ImisSession(self._http, base_url, account.username, account.password)
            self._sessions[key] = session
        return session
