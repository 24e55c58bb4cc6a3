"""``GET /api/v1/audiences``: what the composer's audience picker offers, with sizes where known.

Lists and CSV uploads are counted from their rows. An IQA query's size is only known when iMIS is asked
at send time (the audience service does that), so each recently used query comes with the size it
had the last time a run resolved it, and when.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.api import dashboard_db
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


async def load_audience_options(conn: asyncpg.Connection, org_id: UUID) -> AudienceOptions:
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
