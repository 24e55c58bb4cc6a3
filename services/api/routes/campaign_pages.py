"""The campaign pages: the list (filters and search), the composer, and a campaign with its runs.

Pages read through the same organisation-scoped queries as the API, so another organisation's campaign
is a 404 page. Changes are not made here: the pages' scripts call ``/api/v1/campaigns`` (with the
session's CSRF token), so the state machine, audit and idempotency stay in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from libs.common import campaign_states as states
from libs.common import run_states, schedules
from libs.common.db import Connection
from libs.common.errors import PermanentError
from libs.common.merge import STANDARD_FIELDS
from libs.common.phone import region_for_prefix
from libs.common.run_endings import RUN_ENDED
from libs.common.run_reasons import RunReason
from libs.common.twilio_facts import error_docs_url, error_sentence
from services.api import approval, dashboard_db, db, funnel, pages, run_outcome, test_send_db
from services.api.dashboard_db import Row
from services.api.deps import PoolDep, Principal, PrincipalDep
from services.api.errors import NotFound
from services.api.phone_input import number_digits
from services.api.routes.audiences import describe_stored, load_audience_options

router = APIRouter(tags=["dashboard"], include_in_schema=False)

PAGE_SIZE = 25
RECIPIENTS_PAGE = 100
# The list's tabs: what each shows. "All" leaves archived campaigns out, as a mailbox leaves out its archive.
TABS: dict[str, tuple[str, ...]] = {
    "all": ("draft", "in_review", "approved", "scheduled", "sending", "paused", "completed", "cancelled", "failed"),
    "draft": ("draft",),
    "review": ("in_review", "approved"),
    "scheduled": ("scheduled",),
    "sending": ("sending", "paused"),
    "completed": ("completed", "cancelled"),
    "not_sent": ("failed",),
    "archived": ("archived",),
}
TAB_LABELS = {"all": "All", "draft": "Drafts", "review": "In review or approved", "scheduled": "Scheduled",
              "sending": "Sending", "completed": "Completed", "not_sent": "Not sent", "archived": "Archived"}
RUN_LABELS = {
    "pending": "Waiting to start", "resolving": "Reading the audience", "sending": "Sending", "paused": "Paused",
    "completed": "Completed", "cancelled": "Cancelled", "failed": "Failed", "missed": "Missed (too late)",
    "over_limit": "Stopped: over the segment limit", "refused": "Refused",
}
REASON_LABELS = {
    "missing_mobile": "no mobile number", "invalid_number": "the number is not valid",
    "duplicate_number": "another member has the same number", "duplicate_member": "listed twice",
    "opted_out": "opted out", "bad_number": "the number failed before", "render_failed": "a merge field had no value",
    "over_segment_limit": "the text is too long",
}
# The merge fields staff pick from, most used first.
MERGE_FIELDS = ["first_name", "last_name", "full_name", "informal_name", "chapter", "member_type", "member_id"]
assert set(MERGE_FIELDS) == STANDARD_FIELDS


@router.get("/campaigns", response_class=HTMLResponse)
async def campaign_list(
    request: Request,
    principal: PrincipalDep,
    pool: PoolDep,
    tab: Annotated[str, Query(max_length=20)] = "all",
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    tab = tab if tab in TABS else "all"
    query = (q or "").strip() or None
    async with pool.acquire() as conn:
        rows, total = await dashboard_db.search_campaigns(conn, principal.org.id, TABS[tab], query, PAGE_SIZE,
                                                          (page - 1) * PAGE_SIZE)
        counts = await dashboard_db.campaign_state_counts(conn, principal.org.id)
    tab_counts = {name: sum(counts.get(s, 0) for s in members) for name, members in TABS.items()}
    return pages.render(request, "campaigns/list.html", principal=principal, nav="campaigns", rows=rows,
                        total=total, tab=tab, q=query or "", page=page, pages_total=max(1, -(-total // PAGE_SIZE)),
                        tabs=TAB_LABELS, tab_counts=tab_counts)


@router.get("/campaigns/new", response_class=HTMLResponse)
async def new_campaign(request: Request, principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    return await _composer(request, principal, pool, None)


@router.get("/campaigns/{campaign_id}/edit", response_model=None)
async def edit_campaign(
    campaign_id: UUID, request: Request, principal: PrincipalDep, pool: PoolDep
) -> Response:
    async with pool.acquire() as conn:
        campaign = await _campaign(conn, principal, campaign_id)
    if campaign["state"] not in states.EDITABLE:
        return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
    return await _composer(request, principal, pool, campaign)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    campaign_id: UUID,
    request: Request,
    principal: PrincipalDep,
    pool: PoolDep,
    run: UUID | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    org = principal.org
    async with pool.acquire() as conn:
        campaign = await _campaign(conn, principal, campaign_id)
        runs = await dashboard_db.campaign_runs(conn, org.id, campaign_id)
        errors = await dashboard_db.campaign_run_errors(conn, org.id, campaign_id)
        senders = {s["id"]: s for s in await dashboard_db.senders(conn, org.id)}
        chosen = next((r for r in runs if r["id"] == run), runs[0] if runs else None)
        query = (q or "").strip() or None
        recipients: list[Row] = []
        matching = 0
        run_funnel = None
        if chosen:
            run_funnel = await funnel.run_funnel(conn, org.id, campaign_id, chosen["id"])
            recipients, matching = await dashboard_db.run_recipients(
                conn, org.id, chosen["id"], query, number_digits(query or "", org.default_country_prefix),
                RECIPIENTS_PAGE, (page - 1) * RECIPIENTS_PAGE)
        audience_text = await describe_stored(conn, org.id, campaign["audience"])
    failures: dict[int, int] = {}
    for row in errors:
        failures[row["error_code"]] = failures.get(row["error_code"], 0) + row["messages"]
    return pages.render(
        request, "campaigns/detail.html", principal=principal, nav="campaigns", campaign=campaign, runs=runs,
        chosen=chosen, recipients=recipients, q=query or "", audience_text=audience_text,
        recipients_pager=Pager(page, RECIPIENTS_PAGE, matching),
        failures=[(code, count, error_sentence(code), error_docs_url(code))
                  for code, count in sorted(failures.items(), key=lambda item: -item[1])],
        sender=senders.get(campaign["sender_id"]) if campaign["sender_id"] else None,
        default_sender=next((s for s in senders.values() if s["is_default"]), None),
        actions=states.available_actions(campaign["state"], approval_required=org.require_approval),
        may_review=approval.may_review(principal, campaign), fingerprint=approval.fingerprint(campaign),
        occurrences=_next_occurrences(campaign, org.time_zone),
        live=_open_run(runs) is not None,
        run_in_progress=_open_run(runs, due_only=False) is not None,
        outcome=_last_outcome(runs),
        run_labels=RUN_LABELS, reason_labels=REASON_LABELS,
        funnel=run_funnel, funnel_steps=funnel.steps(run_funnel) if run_funnel else [],
        exclusion_labels=funnel.EXCLUSION_LABELS,
    )


@dataclass(frozen=True)
class Pager:
    """One page of ``total`` rows: "Showing 101-200 of 436", and whether there is a page either side."""

    page: int
    size: int
    total: int

    @property
    def first(self) -> int:
        return min((self.page - 1) * self.size + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.page * self.size, self.total)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page * self.size < self.total


def _open_run(runs: list[Row], *, due_only: bool = True) -> Row | None:
    """The newest run that has not ended (with ``due_only``, one whose time has come: just sent now, or
    its schedule came). The page follows it live, and stops once it has ended."""
    now = datetime.now(UTC)
    return next((r for r in runs if r["state"] in run_states.OPEN
                 and (not due_only or r["state"] != "pending" or r["occurrence_at"] <= now)), None)


def _last_outcome(runs: list[Row]) -> tuple[str, str] | None:
    """(why the newest ended run sent nothing, what to do), when it sent nothing."""
    ended = next((r for r in runs if r["state"] in RUN_ENDED), None)
    if ended is None or ended is not runs[0]:
        return None
    reason = RunReason.from_stored(ended["state_reason_code"], ended["state_reason_detail"])
    words = run_outcome.explain(ended["state"], reason, sent=ended["sent"])
    return (words, run_outcome.next_step(ended["state"])) if words else None


async def _composer(
    request: Request, principal: Principal, pool: asyncpg.Pool, campaign: dict[str, Any] | None
) -> HTMLResponse:
    org = principal.org
    async with pool.acquire() as conn:
        senders = await dashboard_db.senders(conn, org.id)
        account = await dashboard_db.account_summary(conn, org.id)
        audiences = await load_audience_options(conn, org.id)
        runs = await dashboard_db.campaign_runs(conn, org.id, campaign["id"]) if campaign else []
        test_numbers = await test_send_db.staff_test_numbers(conn, org.id)
    limit = campaign["segment_limit"] if campaign else org.campaign_segment_limit
    config = {
        "campaign": _campaign_json(campaign),
        "country": region_for_prefix(org.default_country_prefix),
        "timeZone": org.time_zone,
        "orgSegmentLimit": org.campaign_segment_limit,
        "accountMaxSegments": org.account_max_segments,
        "audiences": audiences.model_dump(mode="json"),
    }
    return pages.render(
        request, "campaigns/compose.html", principal=principal, nav="campaigns", campaign=campaign,
        senders=senders, account=account, audiences=audiences, merge_fields=MERGE_FIELDS, segment_limit=limit,
        run_in_progress=_open_run(runs, due_only=False) is not None,
        config=config, test_numbers=test_numbers,
    )


async def _campaign(conn: Connection, principal: Principal, campaign_id: UUID) -> dict[str, Any]:
    row = await db.get_campaign(conn, principal.org.id, campaign_id)
    if row is None:
        raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
    return row


def _campaign_json(campaign: dict[str, Any] | None) -> dict[str, Any] | None:
    if campaign is None:
        return None
    keep = ("id", "name", "body", "audience", "sender_id", "contact_email", "segment_limit", "schedule", "state",
            "track_links", "next_occurrence_at")
    plain: dict[str, Any] = json.loads(json.dumps({k: campaign[k] for k in keep}, default=str))
    return plain


def _next_occurrences(campaign: dict[str, Any], time_zone: str) -> list[datetime]:
    if campaign["state"] in states.FINAL:
        return []
    try:
        schedule = schedules.from_json(campaign["schedule"])
    except PermanentError:
        return []
    if schedule is None or isinstance(schedule, schedules.SendNow):
        return []
    return schedules.occurrences(schedule, after=datetime.now(UTC), count=5, inclusive=True)
