"""``/api/v1/suppressions``: staff view, search and export suppressions; admins add and lift them; consent history;
iMIS write-backs still pending or failed.

An admin's change is applied as the opt-out service applies a member's keyword, in one transaction: the
suppression, a ``consent_history`` row (source ``staff``, the actor, the required reason), a
ConsentChanged event queued in ``event_outbox`` (the opt-out service's relay publishes it, keyed by
phone), and iMIS write-back jobs for every member seen with the number. Adding a number already
suppressed, or lifting one that is not, changes nothing but is still recorded (``changed: false``).

Lifting a sender-scoped entry does not lift Twilio's own block for that sender (only the member's
START does): a send there fails with 21610 and suppresses the number again.

Wiring (services/api/main.py): ``app.include_router(suppressions.router, prefix=API_PREFIX)``, and
``await suppressions.QUERIES.check(conn)`` beside the API's own queries at start-up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common import erased_suppressions
from libs.common.db import Connection, Queries, transaction
from libs.common.events import ConsentChanged
from libs.common.topics import CONSENT
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, Organisation, OrgDep, PageOffset, PoolDep, SecretsDep
from services.api.phone_input import number_input, number_search
from services.api.spreadsheet_cells import safe_cell

QUERIES = Queries.load(Path(__file__).parents[1] / "suppressions.sql")

router = APIRouter(prefix="/suppressions", tags=["suppressions"])

# As services/optout: how far back member_phone_index counts a member as using a number.
MEMBER_WINDOW_DAYS = 400
EXPORT_PAGE = 2_000

Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Scope = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(|\+[1-9]\d{6,14}|MG[0-9a-f]{32})$")]
# Migration 0042 added reply, review_hold, review and manual (services/api/routes/revocations.py).
Source = Literal["keyword", "twilio_21610", "staff", "import", "reply", "review_hold", "review", "manual"]


class SuppressionOut(BaseModel):
    phone: str
    scope: str = Field(description="'' for the whole organisation, else the sender or Messaging Service")
    source: Source
    reason: str | None
    created_at: datetime


class SuppressionPage(BaseModel):
    items: list[SuppressionOut]
    total: int
    limit: int
    offset: int


class SuppressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    reason: Reason
    scope: Scope = ""


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    reason: Reason
    scope: Scope | None = Field(default=None, description="null: every scope the number is suppressed in")


class ConsentChangeOut(BaseModel):
    phone: str
    action: Literal["opt_out", "opt_in"]
    changed_scopes: list[str] = Field(description="the scopes whose state changed; empty if none did")


class ConsentEntry(BaseModel):
    id: int
    phone: str
    scope: str
    action: Literal["opt_out", "opt_in"]
    source: Source
    keyword: str | None
    body: str | None
    message_sid: str | None
    actor: str
    reason: str | None
    changed: bool
    superseded: bool = Field(description="the member's (or Twilio's) later word had already been applied when this "
                                         "change arrived: recorded, it changed nothing")
    occurred_at: datetime
    channel: str | None = Field(default=None, description="how a manual revocation reached the organisation")
    evidence: str | None = None


class WritebackJob(BaseModel):
    id: int
    member_id: str
    phone: str
    action: Literal["opt_out", "opt_in"]
    state: Literal["pending", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class WritebackPage(BaseModel):
    pending: int = Field(description="waiting to be written, including those retrying")
    retrying: int = Field(description="pending after a failed attempt (last_error says why)")
    failed: int = Field(description="given up: a person must look")
    items: list[WritebackJob]


@router.get("", summary="List or search suppressions, newest first")
async def list_suppressions(
    org: OrgDep,
    pool: PoolDep,
    q: Annotated[str | None, Query(max_length=40, description="the number as typed, or some of its digits")] = None,
    scope: Annotated[str | None, Query(max_length=40)] = None,
    source: Source | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: PageOffset = 0,
) -> SuppressionPage:
    async with pool.acquire() as conn:
        rows = await QUERIES.fetch(conn, "list-suppressions", org_id=org.id, scope=scope, source=source,
                                   q=number_search("q", q, org.default_country_prefix),
                                   limit=limit, offset=offset)
    total = rows[0]["total"] if rows else 0
    return SuppressionPage(items=[SuppressionOut(**_without(r, "total")) for r in rows], total=total, limit=limit,
                           offset=offset)


@router.get("/export.csv", summary="Every suppression as CSV", response_class=StreamingResponse)
async def export_suppressions(org: OrgDep, caller: CallerDep, pool: PoolDep) -> StreamingResponse:
    async with transaction(pool) as conn:
        await audit.record(conn, caller, "suppressions.exported", "suppressions")
    return StreamingResponse(
        _csv_rows(pool, org.id), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


@router.post("", summary="Suppress a number (admins), with a reason")
async def add_suppression(body: SuppressIn, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> ConsentChangeOut:
    org, actor = admin.org, admin.actor
    async with transaction(pool) as conn:
        number = _e164(org, body.phone)
        changed = bool(await QUERIES.fetchval(conn, "staff-suppress", org_id=org.id, phone=number, scope=body.scope,
                                              reason=body.reason))
        await _record(conn, org, actor, number, "opt_out", body.reason, {body.scope: changed})
        await audit.record(conn, caller, "suppression.added", "phone", number,
                           after={"scope": body.scope, "changed": changed}, detail={"reason": body.reason})
    return ConsentChangeOut(phone=number, action="opt_out", changed_scopes=[body.scope] if changed else [])


@router.post("/lift", summary="Lift a number's suppression (admins), with a reason")
async def lift_suppression(body: LiftIn, admin: AdminDep, caller: CallerDep, pool: PoolDep,
                           secrets: SecretsDep) -> ConsentChangeOut:
    org, actor = admin.org, admin.actor
    async with transaction(pool) as conn:
        number = _e164(org, body.phone)
        lifted = [r["scope"] for r in await QUERIES.fetch(conn, "staff-lift", org_id=org.id, phone=number,
                                                           scope=body.scope)]
        lifted += [scope for _, scope in await erased_suppressions.lift(conn, secrets, org.id, [(number, body.scope)])]
        scopes = {scope: True for scope in sorted(lifted)} or {body.scope or "": False}
        await _record(conn, org, actor, number, "opt_in", body.reason, scopes)
        await audit.record(conn, caller, "suppression.lifted", "phone", number,
                           after={"lifted_scopes": sorted(lifted)},
                           detail={"reason": body.reason, "scope": body.scope})
    return ConsentChangeOut(phone=number, action="opt_in", changed_scopes=sorted(lifted))


@router.get("/history", summary="A number's consent history, newest first")
async def consent_history(
    org: OrgDep, pool: PoolDep, phone: Annotated[str, Query(min_length=1, max_length=40)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ConsentEntry]:
    number = _e164(org, phone)
    async with pool.acquire() as conn:
        rows = await QUERIES.fetch(conn, "consent-history", org_id=org.id, phone=number, limit=limit)
    return [ConsentEntry(**dict(r)) for r in rows]


@router.get("/writebacks", summary="iMIS write-backs pending or failed, newest first")
async def writebacks(
    org: OrgDep,
    pool: PoolDep,
    state: Annotated[list[Literal["pending", "failed"]] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: PageOffset = 0,
) -> WritebackPage:
    async with pool.acquire() as conn:
        counts = await QUERIES.fetchrow(conn, "writeback-counts", org_id=org.id)
        rows = await QUERIES.fetch(conn, "writeback-jobs", org_id=org.id, states=state or ["pending", "failed"],
                                   limit=limit, offset=offset)
    assert counts is not None
    return WritebackPage(**dict(counts), items=[WritebackJob(**dict(r)) for r in rows])


# ---------------------------------------------------------------------------------------------


def _e164(org: Organisation, raw: str) -> str:
    return number_input("phone", raw, org.default_country_prefix)


async def _record(
    conn: Connection, org: Organisation, actor: str, number: str, action: str, reason: str,
    scopes: dict[str, bool],
) -> None:
    """History for each scope; an event for each scope that changed; iMIS jobs once if any did."""
    write_back: tuple[int, datetime] | None = None
    for scope, changed in scopes.items():
        row = await QUERIES.fetchrow(conn, "record-consent", org_id=org.id, phone=number, scope=scope,
                                     action=action, actor=actor, reason=reason, changed=changed)
        assert row is not None
        if not changed:
            continue
        event = ConsentChanged(org_id=org.id, phone=number, sender=scope or None, action=action,  # type: ignore[arg-type]
                               source="staff")
        await QUERIES.execute(conn, "enqueue-event", topic=CONSENT.name, key=number, payload=event.model_dump_json())
        if write_back is None or scope == "":
            write_back = (row["id"], row["occurred_at"])
    if write_back is not None:
        await QUERIES.execute(
            conn, "enqueue-imis-jobs", org_id=org.id, phone=number, action=action,
            source_text=f"Textpulse staff ({actor}): {reason}"[:200], occurred_at=write_back[1],
            consent_id=write_back[0], window_days=MEMBER_WINDOW_DAYS,
        )


async def _csv_rows(pool: asyncpg.Pool, org_id: UUID) -> AsyncIterator[str]:
    """The export, a page of rows at a time through a cursor: memory stays flat for any size."""
    columns = ["phone", "scope", "source", "reason", "created_at"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    yield out.getvalue()
    query = QUERIES["export-suppressions"]
    async with transaction(pool) as conn:
        cursor = await conn.cursor(query.sql, *query.args({"org_id": org_id}))
        while rows := await cursor.fetch(EXPORT_PAGE):
            out.seek(0)
            out.truncate()
            for r in rows:
                writer.writerow([r["phone"], r["scope"], r["source"], safe_cell(r["reason"]),
                                 r["created_at"].isoformat()])
            yield out.getvalue()


def _without(record: asyncpg.Record, *names: str) -> dict[str, Any]:
    return {k: v for k, v in dict(record).items() if k not in names}
