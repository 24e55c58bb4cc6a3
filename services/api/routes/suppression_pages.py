"""The Suppressions page. Every figure and change on it goes through ``/api/v1/suppressions`` (the page's
script calls it with the session's CSRF token); this module only renders the frame. Staff and admins
see the list, search, history, export and the iMIS write-back count; only admins get the add and lift
forms."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.api import pages
from services.api.deps import PrincipalDep
from services.api.routes.suppressions import Source

router = APIRouter(tags=["dashboard"], include_in_schema=False)

SOURCE_LABELS = {"keyword": "Member's keyword (STOP)", "twilio_21610": "Twilio block (21610)",
                 "staff": "Staff", "import": "Import", "reply": "Member's reply (revocation)",
                 "review_hold": "Held for review", "review": "Reply decided a revocation",
                 "manual": "Revocation by another channel"}
assert set(SOURCE_LABELS) == set(get_args(Source))


@router.get("/suppressions", response_class=HTMLResponse)
async def suppressions_page(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return pages.render(request, "suppressions.html", principal=principal, nav="suppressions",
                        sources=SOURCE_LABELS)
