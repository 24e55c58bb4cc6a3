"""The API's dependencies as types, so route signatures stay short::

    async def get_campaign(campaign_id: UUID, org: OrgDep, pool: PoolDep) -> CampaignOut: ...

TEMPORARY: the organisation comes from an ``X-Org-Id`` header and the acting user from ``X-Actor``,
trusted as sent, until the authentication issue replaces ``current_org`` and ``current_actor`` with the
signed-in user's. Routes already take an ``OrgDep``, so every query is organisation-scoped today and
nothing but this module changes then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import Depends, Header, Request

from services.api import db
from services.api.errors import Unauthenticated


def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]


@dataclass(frozen=True, slots=True)
class Organisation:
    id: UUID
    time_zone: str
    campaign_segment_limit: int
    account_max_segments: int | None  # sms_accounts.max_segments: caps every campaign's limit


async def current_org(
    pool: PoolDep,
    x_org_id: Annotated[str | None, Header(description="TEMPORARY: the organisation acted for")] = None,
) -> Organisation:
    """The organisation named by ``X-Org-Id``; 401 if the header is missing, malformed or unknown."""
    if not x_org_id:
        raise Unauthenticated("org_missing", "X-Org-Id header is required")
    try:
        org_id = UUID(x_org_id)
    except ValueError:
        raise Unauthenticated("org_invalid", "X-Org-Id must be an organisation id (a UUID)") from None
    async with pool.acquire() as conn:
        row = await db.get_organisation(conn, org_id)
    if row is None:
        raise Unauthenticated("org_unknown", "X-Org-Id names no organisation")
    return Organisation(row["id"], row["time_zone"], row["campaign_segment_limit"], row["account_max_segments"])


OrgDep = Annotated[Organisation, Depends(current_org)]


def current_actor(
    x_actor: Annotated[str | None, Header(max_length=200, description="TEMPORARY: who is acting")] = None,
) -> str:
    return x_actor or "api"


ActorDep = Annotated[str, Depends(current_actor)]

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Retrying with the same key returns the first response and starts nothing new"),
]
