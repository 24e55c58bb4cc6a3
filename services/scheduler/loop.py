"""The scheduler's loop: due occurrences become runs, due runs become one campaign-due event each.

Each tick has two steps, each one transaction:

1. **Materialise.** Campaigns whose ``next_occurrence_at`` has come are locked (``FOR UPDATE SKIP
   LOCKED``); a run is inserted for each due occurrence (``UNIQUE (campaign_id, occurrence_at)``, so a
   repeat is a no-op) and ``next_occurrence_at`` moves to the next one, computed by
   ``libs.common.schedules``. A scheduler that was down catches up, at most ``catch_up`` runs per
   campaign per tick.
2. **Publish.** Due, unpublished runs are claimed with their campaigns (``FOR UPDATE OF r, c SKIP
   LOCKED``). Every send passes here, so here is the approval gate: where the organisation requires
   approval, a run whose content or whose campaign's is not what was approved is refused and its campaign
   goes back to review (``libs.common.approval``). A run more than its campaign's ``max_lateness_s``
   late is marked ``missed`` (the usage service's alert watcher e-mails that, and the campaign follows:
   ``libs.common.run_endings``) unless the campaign says ``send_when_late``. The others
   are marked published, their campaigns move scheduled -> sending, and one ``CampaignDue`` per run is
   sent to Kafka (keyed by campaign); only after Kafka acknowledged every event is the transaction
   committed.

Delivery is therefore at least once and, without a crash, exactly once: two schedulers never claim the
same run, and a crash (kill -9) before the commit rolls everything back, so the run is still unpublished
and the next tick, here or on another process, publishes it. A crash after Kafka's acknowledgement and
before the commit publishes that run a second time; its ``event_id`` is derived from the run id, so
consumers dedupe on either.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from libs.common import approval, metrics, run_endings, run_reasons, schedules
from libs.common.campaign_states import CampaignState, transition
from libs.common.db import Connection, transaction
from libs.common.events import CampaignDue
from libs.common.kafka import EventPublisher
from libs.common.logging import get_logger
from libs.common.outages import is_outage
from libs.common.topics import CAMPAIGN_DUE
from services.scheduler import db

log = get_logger(__name__)

# A campaign-due event's id is a function of its run, so a republished run carries the same event id.
_EVENT_NAMESPACE = uuid.UUID("5f0c7a51-7a0e-4c0c-9d0e-6a1f3b2c9d10")



@dataclass(frozen=True)
class Scheduler:
    pool: asyncpg.Pool
    publisher: EventPublisher
    instance: str  # host:pid, recorded on the runs this process publishes
    batch: int = 100  # campaigns and runs per transaction
    catch_up: int = 50  # runs created per campaign per tick after downtime


@dataclass(frozen=True)
class TickReport:
    runs_created: int = 0
    published: int = 0
    missed: int = 0
    full: bool = False  # a batch was full: there is more to do now


def campaign_due_event(run: db.DueRun, now: datetime) -> CampaignDue:
    return CampaignDue(
        event_id=uuid.uuid5(_EVENT_NAMESPACE, str(run.run_id)),
        occurred_at=now,
        org_id=run.org_id,
        campaign_id=run.campaign_id,
        run_id=run.run_id,
        scheduled_for=run.occurrence_at,
    )


async def tick(scheduler: Scheduler, now: datetime) -> TickReport:
    """One pass: create the runs that came due by ``now``, then publish (or miss) the due runs."""
    created, campaigns_full = await materialise(scheduler, now)
    published, missed, runs_full = await publish_due(scheduler, now)
    return TickReport(created, published, missed, campaigns_full or runs_full)


async def materialise(scheduler: Scheduler, now: datetime) -> tuple[int, bool]:
    """Insert a run for each occurrence due by ``now``; return (runs created, whether the batch was full)."""
    created = 0
    async with transaction(scheduler.pool) as conn:
        campaigns = await db.lock_due_campaigns(conn, now, scheduler.batch)
        for campaign in campaigns:
            try:
                schedule = schedules.from_json(campaign.schedule)
            except schedules.InvalidSchedule as exc:
                # Stored schedules are validated when written; one that no longer reads is a bug. Stop that
                # campaign (visibly) rather than crash the loop for every organisation.
                await db.set_next_occurrence(conn, campaign.id, None)
                await db.record_audit(conn, org_id=campaign.org_id, campaign_id=campaign.id,
                                      action="schedule_invalid", detail={"error": str(exc)})
                log.error("schedule.rejected", extra={"campaign_id": str(campaign.id), "error": str(exc)})
                continue
            due = [] if schedule is None else schedules.occurrences(
                schedule, after=campaign.next_occurrence_at, count=scheduler.catch_up + 1, inclusive=True
            )
            taken = [t for t in due if t <= now][: scheduler.catch_up]
            for occurrence in taken:
                if await db.insert_run(conn, campaign, occurrence) is not None:
                    created += 1
            remaining = due[len(taken):]
            await db.set_next_occurrence(conn, campaign.id, remaining[0] if remaining else None)
    return created, len(campaigns) == scheduler.batch


async def publish_due(scheduler: Scheduler, now: datetime) -> tuple[int, int, bool]:
    """Publish or miss each due run; return (published, missed, whether the batch was full).

    Raises what Kafka or PostgreSQL raise; then nothing of this batch is committed.
    """
    async with transaction(scheduler.pool) as conn:
        runs = await db.claim_due_runs(conn, now, scheduler.batch)
        withheld = await _withhold_unapproved(conn, runs, now)
        runs_left = [r for r in runs if r.campaign_id not in withheld]
        late = [r for r in runs_left if schedules.is_missed(
            r.occurrence_at, now, max_lateness=r.max_lateness, send_when_late=r.send_when_late)]
        on_time = [r for r in runs_left if r not in late]
        for run in late:
            await _miss(conn, run, now)
        if on_time:
            await db.mark_published(conn, [r.run_id for r in on_time], now, scheduler.instance)
            started = await _start_campaigns(conn, on_time, now)
            for run in on_time:
                moved = run.run_id in started  # this run took its campaign from scheduled to sending
                await db.record_audit(conn, org_id=run.org_id, campaign_id=run.campaign_id, run_id=run.run_id,
                                      action="run_published", detail={"occurrence_at": run.occurrence_at},
                                      from_state=run.campaign_state if moved else None,
                                      to_state=CampaignState.SENDING if moved else None)
            # The producer batches concurrent sends; each waits for the broker's acknowledgement.
            await asyncio.gather(*(
                scheduler.publisher.publish(CAMPAIGN_DUE, campaign_due_event(run, now), key=str(run.campaign_id))
                for run in on_time
            ))
    metrics.SCHEDULER_MISSED.inc(len(late))  # counted once committed, as the published runs below
    for campaign_id, found in withheld.items():
        log.warning("run.not_approved", extra={"campaign_id": str(campaign_id), "problem": found})
    for run in on_time:
        metrics.SCHEDULER_LATENESS_SECONDS.observe(max((now - run.occurrence_at).total_seconds(), 0.0))
        log.info("run.published", extra={"run_id": str(run.run_id), "campaign_id": str(run.campaign_id),
                                          "late_s": round((now - run.occurrence_at).total_seconds())})
    return len(on_time), len(late), len(runs) == scheduler.batch


async def _withhold_unapproved(
    conn: Connection, runs: list[db.DueRun], now: datetime
) -> dict[uuid.UUID, approval.ApprovalProblem]:
    """The approval gate every send passes: where the organisation requires approval, a run starts only if
    its content and its campaign's are what was approved. Otherwise the run is refused (the usage service's
    alert watcher e-mails that), the campaign goes back to review with its schedule stopped, and the audit
    says why. Returns the campaigns withheld, with the problem found (libs.common.approval).
    """
    withheld: dict[uuid.UUID, approval.ApprovalProblem] = {}
    for run in runs:
        if not run.require_approval:
            continue
        found = withheld.get(run.campaign_id) or approval.problem(
            run.approval_fingerprint, [run.run_content, run.campaign_content])
        if found is None:
            continue
        await db.refuse_unapproved_run(conn, run.run_id, now, run_reasons.not_approved(found))
        if run.campaign_id in withheld:
            continue
        withheld[run.campaign_id] = found
        await db.withdraw_unapproved_campaign(conn, run.campaign_id, now)
        to_review = transition(run.campaign_state, CampaignState.IN_REVIEW)
        await db.set_campaign_state(conn, run.campaign_id, to_review, now)
        await db.record_audit(conn, org_id=run.org_id, campaign_id=run.campaign_id, run_id=run.run_id,
                              action="returned_to_review", from_state=run.campaign_state, to_state=to_review,
                              detail={"reason": found, "approved": run.approval_fingerprint,
                                      "run": approval.fingerprint(run.run_content),
                                      "campaign": approval.fingerprint(run.campaign_content)})
    return withheld


async def _miss(conn: Connection, run: db.DueRun, now: datetime) -> None:
    late_s = int((now - run.occurrence_at).total_seconds())
    limit_s = int(run.max_lateness.total_seconds())
    await db.mark_missed(conn, run.run_id, now, run_reasons.too_late(late_s, limit_s))
    await db.record_audit(conn, org_id=run.org_id, campaign_id=run.campaign_id, run_id=run.run_id,
                          action="run_missed", detail={"occurrence_at": run.occurrence_at, "late_s": late_s,
                                                       "max_lateness_s": limit_s})
    # The campaign is locked with the run (claim-due-runs): a one-time campaign ends "Not sent".
    await run_endings.follow_run(conn, run.run_id, actor="scheduler")
    log.warning("run.missed", extra={"run_id": str(run.run_id), "campaign_id": str(run.campaign_id),
                                     "late_s": late_s, "max_lateness_s": limit_s})


async def _start_campaigns(conn: Connection, runs: list[db.DueRun], now: datetime) -> set[uuid.UUID]:
    """scheduled -> sending for each campaign with a run published now (already sending: unchanged).

    Returns the runs that moved their campaign (the first of each campaign's in this batch).
    """
    first_run = {r.campaign_id: r for r in reversed(runs)}
    started = set()
    for run in first_run.values():
        if run.campaign_state == CampaignState.SCHEDULED:
            await db.set_campaign_state(conn, run.campaign_id, transition(run.campaign_state, CampaignState.SENDING),
                                        now)
            started.add(run.run_id)
    return started


async def run_forever(
    scheduler: Scheduler,
    *,
    interval_s: float = 1.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Tick every ``interval_s`` (at once again while batches are full) until cancelled.

    A tick that fails because PostgreSQL or Kafka is away is retried with a growing delay (up to 30 s);
    nothing was committed, so no work is lost. Any other exception ends the loop, and the process with it.
    """
    backoff = interval_s
    while True:
        try:
            report = await tick(scheduler, clock())
        except Exception as exc:
            if not is_outage(exc):
                raise
            backoff = min(max(backoff * 2, 1.0), 30.0)
            log.warning("tick.failed", extra={"error": repr(exc)[:300], "retry_in_s": backoff})
            await asyncio.sleep(backoff)
            continue
        backoff = interval_s
        if report.runs_created or report.missed:
            log.info("tick.finished", extra={"runs_created": report.runs_created, "published": report.published,
                                             "missed": report.missed})
        if not report.full:
            await asyncio.sleep(interval_s)
