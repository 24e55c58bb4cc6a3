"""The Inbox pages: the conversations and one conversation's thread, rendered on the server so they read
without JavaScript. The answer box and the live refresh are ``static/inbox.js``, through ``/api/v1/inbox``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.api import pages
from services.api.deps import PoolDep, PrincipalDep
from services.api.errors import InvalidInput
from services.api.routes import inbox, keyword_settings

T = TypeVar("T")

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, principal: PrincipalDep, pool: PoolDep, show: str = "open",
                     campaign: str = "", from_day: str = "", to_day: str = "") -> HTMLResponse:
    """The filters come from a plain GET form (empty fields: no filter); days are the organisation's own."""
    filters = {"open": ("open", False, False), "unread": ("open", True, False), "mine": (None, False, True),
               "done": ("done", False, False), "all": (None, False, False)}
    state, unread_only, mine = filters.get(show, filters["open"])
    mine = mine and principal.user_id is not None
    zone = ZoneInfo(principal.org.time_zone)
    campaign_id = _form_value("campaign", campaign, UUID, "a campaign's ID")
    first = _form_value("from_day", from_day, date.fromisoformat, "a day as YYYY-MM-DD")
    last = _form_value("to_day", to_day, date.fromisoformat, "a day as YYYY-MM-DD")
    async with pool.acquire() as conn:
        rows = await inbox.QUERIES.fetch(
            conn, "conversations", org_id=principal.org.id, state=state, unread_only=unread_only,
            assigned_to=principal.user_id if mine else None, campaign_id=campaign_id,
            since=_day_start(first, zone), until=_day_start(last + timedelta(days=1), zone) if last else None,
            limit=100, offset=0)
        unread = await inbox.unread_count(conn, principal.org.id)
        campaigns = await inbox.QUERIES.fetch(conn, "conversation-campaigns", org_id=principal.org.id)
    return pages.render(request, "inbox.html", principal=principal, nav="inbox", show=show, unread=unread,
                        conversations=[inbox._conversation(r) for r in rows], campaigns=campaigns,
                        campaign=campaign, from_day=from_day, to_day=to_day)


def _form_value(field: str, text: str, parse: Callable[[str], T], expected: str) -> T | None:
    """``text`` parsed, None when empty, or a 422 naming ``field``."""
    if not text.strip():
        return None
    try:
        return parse(text.strip())
    except ValueError:
        raise InvalidInput(field, "invalid_filter", f"expected {expected}, got {text!r}") from None


def _day_start(day: date | None, zone: ZoneInfo) -> datetime | None:
    return datetime.combine(day, time(), zone) if day else None


@router.get("/inbox/keywords", response_class=HTMLResponse)
async def keywords_page(request: Request, principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    """Who answers HELP and the organisation's own keywords; admins change them (through the API)."""
    shown = await keyword_settings.read_keywords(principal.org, pool)
    return pages.render(request, "inbox_keywords.html", principal=principal, nav="inbox", keywords=shown)


@router.get("/inbox/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(conversation_id: inbox.ConversationId, request: Request,
                            principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    async with pool.acquire() as conn:
        shown = await inbox.read_thread(conn, principal.org.id, conversation_id)
        users = await conn.fetch("SELECT id, coalesce(nullif(name, ''), email) AS name FROM users "
                                 "WHERE org_id = $1 AND active ORDER BY 2", principal.org.id)
    return pages.render(request, "inbox_thread.html", principal=principal, nav="inbox", thread=shown, users=users)
