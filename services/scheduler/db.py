"""The scheduler's only SQL: named statements from ``queries.sql``, wrapped as typed functions.

Every function takes a connection that the caller holds inside a transaction; none commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from libs.common import run_reasons
from libs.common.db import Connection, Queries
from libs.common.run_reasons import RunReason

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True, slots=True)
class DueCampaign:
    id: UUID
    org_id: UUID
    schedule: dict[str, Any]
    next_occurrence_at: datetime


@dataclass(frozen=True, slots=True)
class DueRun:
    run_id: UUID
    org_id: UUID
    campaign_id: UUID
    occurrence_at: datetime
    campaign_state: str
    send_when_late: bool
    max_lateness: timedelta
    require_approval: bool  # the organisation's setting
    approval_fingerprint: str | None  # what was approved (libs.common.approval)
    run_content: dict[str, Any]  # what the run would send (libs.common.approval.PINNED_FIELDS)
    campaign_content: dict[str, Any]  # the campaign's as it is now, its sender the effective one


async def lock_due_campaigns(conn: Connection, now: datetime, limit: int) -> list[DueCampaign]:
    rows = await QUERIES.fetch(conn, "lock-due-campaigns", now=now, limit=limit)
    return [
        DueCampaign(r["id"], r["org_id"], json.loads(r["schedule"]), r["next_occurrence_at"]) for r in rows
    ]


async def insert_run(conn: Connection, campaign: DueCampaign, occurrence_at: datetime) -> UUID | None:
    """The new run's id, or None when the occurrence already had a run."""
    run_id: UUID | None = await QUERIES.fetchval(
        conn, "insert-run", org_id=campaign.org_id, campaign_id=campaign.id, occurrence_at=occurrence_at
    )
    return run_id


async def set_next_occurrence(conn: Connection, campaign_id: UUID, next_occurrence_at: datetime | None) -> None:
    await QUERIES.execute(conn, "set-next-occurrence", campaign_id=campaign_id, next_occurrence_at=next_occurrence_at)


async def claim_due_runs(conn: Connection, now: datetime, limit: int) -> list[DueRun]:
    rows = await QUERIES.fetch(conn, "claim-due-runs", now=now, limit=limit)
    return [
        DueRun(r["run_id"], r["org_id"], r["campaign_id"], r["occurrence_at"], r["campaign_state"],
               r["send_when_late"], timedelta(seconds=r["max_lateness_s"]), r["require_approval"],
               r["approval_fingerprint"],
               {"body": r["run_body"], "audience": json.loads(r["run_audience"]), "sender_id": r["run_sender_id"],
                "track_links": r["run_track_links"], "transactional": r["transactional"]},
               {"body": r["body"], "audience": json.loads(r["audience"]), "sender_id": r["effective_sender_id"],
                "track_links": r["track_links"], "transactional": r["transactional"]})
        for r in rows
    ]


async def mark_published(conn: Connection, run_ids: Sequence[UUID], now: datetime, instance: str) -> None:
    await QUERIES.execute(conn, "mark-published", run_ids=list(run_ids), now=now, instance=instance)


async def mark_missed(conn: Connection, run_id: UUID, now: datetime, reason: RunReason) -> None:
    await QUERIES.execute(conn, "mark-missed", run_id=run_id, now=now, **run_reasons.columns(reason))


async def refuse_unapproved_run(conn: Connection, run_id: UUID, now: datetime, reason: RunReason) -> None:
    await QUERIES.execute(conn, "refuse-unapproved-run", run_id=run_id, now=now, **run_reasons.columns(reason))


async def withdraw_unapproved_campaign(conn: Connection, campaign_id: UUID, now: datetime) -> None:
    """Cancel the campaign's other unpublished runs and stop its schedule until it is approved again."""
    reason = run_reasons.rescheduled("a change awaiting approval")
    await QUERIES.execute(conn, "withdraw-unapproved-campaign", campaign_id=campaign_id, now=now,
                          **run_reasons.columns(reason))


async def set_campaign_state(conn: Connection, campaign_id: UUID, state: str, now: datetime) -> None:
    await QUERIES.execute(conn, "set-campaign-state", campaign_id=campaign_id, state=state, now=now)


async def record_audit(
    conn: Connection,
    *,
    org_id: UUID,
    campaign_id: UUID,
    action: str,
    run_id: UUID | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await QUERIES.execute(
        conn, "insert-audit", org_id=org_id, campaign_id=campaign_id, run_id=run_id, action=action,
        from_state=from_state, to_state=to_state, detail=json.dumps(detail or {}, default=str),
    )
