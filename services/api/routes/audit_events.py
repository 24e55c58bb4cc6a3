"""``/api/v1/audit-events``: the organisation's audit log for admins, filtered and paged, or as CSV.

Read-only on purpose: there is no route that edits or deletes a row, and the table refuses it anyway. The
dates of ``from`` and ``to`` are days in the organisation's time zone, both included. Exporting the log is
itself recorded (``audit_events.exported``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from libs.common.db import transaction
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PageOffset, PoolDep
from services.api.errors import InvalidInput
from services.api.spreadsheet_cells import safe_cell

router = APIRouter(prefix="/audit-events", tags=["audit"])

EXPORT_PAGE = 2_000
CSV_COLUMNS = ("at", "actor", "actor_kind", "action", "target_type", "target_id", "client_address", "before",
               "after", "detail")


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_kind: audit.ActorKind
    action: str
    target_type: str
    target_id: str | None
    before: Any
    after: Any
    client_address: str | None
    detail: dict[str, Any]


class AuditEventPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int
    actions: list[str]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    org_id: UUID
    action: str | None
    actor: str | None
    from_at: datetime | None
    to_at: datetime | None

    def values(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "action": self.action, "actor": self.actor, "from_at": self.from_at,
                "to_at": self.to_at}


def audit_filter(
    admin: AdminDep,
    action: Annotated[str | None, Query(max_length=100, description="exactly this action")] = None,
    actor: Annotated[str | None, Query(max_length=400, description="exactly this e-mail or api-key:<name>")] = None,
    from_: Annotated[date | None, Query(alias="from", description="from this day (organisation's time zone)")] = None,
    to: Annotated[date | None, Query(description="up to and including this day")] = None,
) -> AuditFilter:
    if from_ is not None and to is not None and to < from_:
        raise InvalidInput("to", "date_range_reversed", "the last day is before the first")
    zone = ZoneInfo(admin.org.time_zone)

    def start_of(day: date | None) -> datetime | None:
        return None if day is None else datetime.combine(day, time(), zone)

    return AuditFilter(admin.org.id, action or None, actor or None, start_of(from_),
                       start_of(to + timedelta(days=1)) if to is not None and to < date.max else None)


AuditFilterDep = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("", summary="The audit log, newest first (admins)")
async def list_audit_events(
    admin: AdminDep, pool: PoolDep, where: AuditFilterDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: PageOffset = 0,
) -> AuditEventPage:
    async with pool.acquire() as conn:
        rows = await audit.QUERIES.fetch(conn, "list-audit-events", **where.values(), limit=limit, offset=offset)
        actions = [r["action"] for r in await audit.QUERIES.fetch(conn, "audit-actions", org_id=admin.org.id)]
    return AuditEventPage(items=[AuditEventOut(**decoded(r)) for r in rows], total=rows[0]["total"] if rows else 0,
                          limit=limit, offset=offset, actions=actions)


@router.get("/export.csv", summary="The audit log as CSV, with the same filters (admins)",
            response_class=StreamingResponse)
async def export_audit_events(admin: AdminDep, caller: CallerDep, pool: PoolDep,
                              where: AuditFilterDep) -> StreamingResponse:
    async with transaction(pool) as conn:
        await audit.record(conn, caller, "audit_events.exported", "audit_events",
                           detail={k: v for k, v in where.values().items() if k != "org_id" and v is not None})
    return StreamingResponse(_csv_rows(pool, where), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})


def decoded(record: asyncpg.Record) -> dict[str, Any]:
    row = {k: v for k, v in dict(record).items() if k != "total"}
    for column in ("before", "after", "detail"):
        if row[column] is not None:
            row[column] = json.loads(row[column])
    return row


async def _csv_rows(pool: asyncpg.Pool, where: AuditFilter) -> AsyncIterator[str]:
    """A page of rows at a time through a cursor, as the suppressions export: memory stays flat."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    query = audit.QUERIES["export-audit-events"]
    async with transaction(pool) as conn:
        cursor = await conn.cursor(query.sql, *query.args(where.values()))
        while rows := await cursor.fetch(EXPORT_PAGE):
            out.seek(0)
            out.truncate()
            for r in rows:
                writer.writerow([r["at"].isoformat()] + [safe_cell(r[c]) for c in CSV_COLUMNS[1:]])
            yield out.getvalue()
