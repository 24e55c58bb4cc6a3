"""``/api/v1/campaigns/{campaign_id}/runs/{run_id}/...``: what a run achieved, as its recipient funnel and as
a CSV of its recipients (services/api/funnel.py). Signed-in callers of the run's organisation; another
organisation's run is a 404, as its campaign is.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from libs.common.db import transaction
from services.api import audit, funnel
from services.api.audit import CallerDep
from services.api.deps import OrgDep, PoolDep
from services.api.errors import NotFound
from services.api.funnel import RunFunnel

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


@router.get("/{campaign_id}/runs/{run_id}/funnel", summary="The run's recipient funnel, from targeted to opted out")
async def run_funnel(campaign_id: UUID, run_id: UUID, org: OrgDep, pool: PoolDep) -> RunFunnel:
    async with pool.acquire() as conn:
        found = await funnel.run_funnel(conn, org.id, campaign_id, run_id)
    if found is None:
        raise NotFound("run_not_found", f"no run {run_id} of campaign {campaign_id}")
    return found


@router.get("/{campaign_id}/runs/{run_id}/recipients.csv", summary="The run's recipients and their outcomes as CSV",
            response_class=StreamingResponse)
async def export_run(campaign_id: UUID, run_id: UUID, org: OrgDep, caller: CallerDep,
                     pool: PoolDep) -> StreamingResponse:
    async with transaction(pool) as conn:
        if not await funnel.run_exists(conn, org.id, campaign_id, run_id):
            raise NotFound("run_not_found", f"no run {run_id} of campaign {campaign_id}")
        await audit.record(conn, caller, "run.exported", "run", str(run_id))
    return StreamingResponse(
        funnel.export_rows(pool, org.id, run_id), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.csv"'},
    )
