"""The "Outbox (demo)" page: the organisation's alert e-mails, and which of them the demo's SMTP catcher
(``standins/smtp``, started by ``make demo``) received, with their text.

It exists only when ``TEXTPULSE_DEMO_OUTBOX_URL`` is set (404 otherwise, and no menu entry). Alerts are
read from the organisation's own rows of the alerts outbox and matched to caught mail by Message-ID, so
an organisation never sees another's e-mail although the catcher holds everyone's.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.api import dashboard_db, pages
from services.api.deps import PoolDep, PrincipalDep
from services.api.errors import NotFound

router = APIRouter(tags=["dashboard"], include_in_schema=False)

CATCHER_TIMEOUT_S = 5.0


@router.get("/outbox", response_class=HTMLResponse)
async def outbox_page(request: Request, principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    catcher_url = request.app.state.web.demo_outbox_url
    if not catcher_url:
        raise NotFound("not_found", "there is no demo outbox: TEXTPULSE_DEMO_OUTBOX_URL is not set")
    async with pool.acquire() as conn:
        alerts = await dashboard_db.recent_alerts(conn, principal.org.id)
    caught, catcher_error = await _caught_messages(catcher_url)
    by_message_id = {m["message_id"]: m for m in caught if m.get("message_id")}
    for alert in alerts:
        alert["caught"] = by_message_id.get(alert["message_id"])
    return pages.render(request, "outbox.html", principal=principal, nav="outbox", alerts=alerts,
                        catcher_url=catcher_url, catcher_error=catcher_error)


async def _caught_messages(catcher_url: str) -> tuple[list[dict[str, Any]], str | None]:
    """What the catcher holds, or an empty list and why it could not be read (the page says so)."""
    try:
        async with httpx.AsyncClient(base_url=catcher_url, timeout=CATCHER_TIMEOUT_S) as client:
            response = await client.get("/messages")
            response.raise_for_status()
            return response.json(), None
    except (httpx.HTTPError, ValueError) as exc:
        return [], f"the SMTP catcher at {catcher_url} did not answer ({type(exc).__name__})"
