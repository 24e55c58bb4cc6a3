"""The Lists pages: every list of the organisation, and one list with its members. Changes are not made
here: the pages' script (``static/lists.js``) calls ``/api/v1/lists`` with the session's CSRF token."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.api import dashboard_db, lists_db, pages
from services.api.deps import PoolDep, PrincipalDep
from services.api.errors import NotFound

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/lists", response_class=HTMLResponse)
async def lists_page(request: Request, principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    async with pool.acquire() as conn:
        rows, total = await lists_db.lists(conn, principal.org.id, 500, 0)
    return pages.render(request, "lists/index.html", principal=principal, nav="lists", lists=rows, total=total)


@router.get("/lists/{list_id}", response_class=HTMLResponse)
async def list_page(list_id: UUID, request: Request, principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    org = principal.org
    async with pool.acquire() as conn:
        found = await lists_db.get_list(conn, org.id, list_id)
        if found is None:
            raise NotFound("list_not_found", f"no member list {list_id}")
        runs = await lists_db.recent_runs(conn, org.id)
        uploads = await dashboard_db.csv_uploads(conn, org.id)
    config = {"listId": str(list_id), "timeZone": org.time_zone}
    return pages.render(request, "lists/detail.html", principal=principal, nav="lists", list=found, runs=runs,
                        uploads=uploads, prefix=org.default_country_prefix, config=config)
