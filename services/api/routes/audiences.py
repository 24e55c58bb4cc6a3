"""``GET /api/v1/audiences``: what the composer's audience picker offers, with sizes where known;
``POST /api/v1/audiences/describe``: an audience stated in words, as the campaign page states it.

Lists and CSV uploads are counted from their rows. An IQA query's size is only known when iMIS is asked
at send time (the audience service does that), so each recently used query comes with the size it
had the last time a run resolved it, and when.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from libs.common.audience import Audience, AudienceFacts, describe_audience, parse_audience, stored_form
from libs.common.db import Connection
from libs.common.errors import PermanentError
from services.api import dashboard_db, lists_db, uploads_db
from services.api.deps import OrgDep, PoolDep

router = APIRouter(prefix="/audiences", tags=["audiences"])


class MemberListOut(BaseModel):
    id: UUID
    name: str
    description: str
    members: int


class CsvUploadOut(BaseModel):
    id: UUID
    filename: str
    rows_accepted: int
    rows_rejected: int = Field(description="rows refused when the file was read (see its rejected-rows report)")
    created_at: datetime


class IqaQueryOut(BaseModel):
    query: str
    last_members: int | None = Field(description="members it returned at its last resolved run")
    last_resolved_at: datetime | None


class AudienceOptions(BaseModel):
    lists: list[MemberListOut]
    csv_uploads: list[CsvUploadOut]
    iqa_queries: list[IqaQueryOut]


@router.get("", summary="Lists, CSV uploads and recent IQA queries to choose an audience from")
async def audience_options(org: OrgDep, pool: PoolDep) -> AudienceOptions:
    async with pool.acquire() as conn:
        return await load_audience_options(conn, org.id)


async def load_audience_options(conn: Connection, org_id: UUID) -> AudienceOptions:
    queries = []
    for query in await dashboard_db.recent_iqa_queries(conn, org_id):
        last = await dashboard_db.last_audience_size(conn, org_id, {"kind": "iqa", "query": query})
        queries.append(IqaQueryOut(query=query, last_members=last["members"] if last else None,
                                   last_resolved_at=last["resolved_at"] if last else None))
    return AudienceOptions(
        lists=[MemberListOut(**r) for r in await dashboard_db.member_lists(conn, org_id)],
        csv_uploads=[CsvUploadOut(**r) for r in await dashboard_db.csv_uploads(conn, org_id)],
        iqa_queries=queries,
    )


class DescribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: Audience


class Described(BaseModel):
    description: str = Field(description="e.g. \"List 'Board members' (12 members)\"")


@router.post("/describe", summary="An audience in words, as the campaign page and the send dialog state it")
async def describe(body: DescribeIn, org: OrgDep, pool: PoolDep) -> Described:
    async with pool.acquire() as conn:
        return Described(description=await describe_stored(conn, org.id, stored_form(body.audience)))


async def describe_stored(conn: Connection, org_id: UUID, audience: dict[str, Any] | None) -> str:
    """The sentence for a campaign's stored audience, with the names and counts its source has now."""
    return describe_audience(audience, await _facts(conn, org_id, audience))


async def _facts(conn: Connection, org_id: UUID, audience: dict[str, Any] | None) -> AudienceFacts:
    try:
        spec = parse_audience(audience)
    except PermanentError:
        return AudienceFacts()  # describe_audience says what is wrong with it
    if spec.kind == "list":
        found = await lists_db.get_list(conn, org_id, spec.list_id)
        return AudienceFacts(list_name=found["name"], list_members=found["members"]) if found else AudienceFacts()
    if spec.kind == "csv":
        upload = await uploads_db.upload(conn, org_id, spec.upload_id)
        return AudienceFacts(upload_filename=upload["filename"], upload_rows=upload["rows_accepted"]) \
            if upload else AudienceFacts()
    return AudienceFacts()
