"""Home: the page (``/``) and its data (``GET /api/v1/dashboard/home``, ``.../sending`` for live progress).

Everything Home shows comes from rollups and counters, never from a scan of the send ledger's
history: the subscription, live usage per day from ``usage_daily`` (today and this month in the
organisation's own calendar), campaigns counted by state, and each sending campaign's newest run
with a rate measured over the last minute (``progress.py``), and the last 30 days' click-through and
opt-out rates from the usage rollup per run and the recorded clicks (``funnel.py``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from libs.common.campaign_states import CampaignState
from libs.common.db import Connection
from services.api import dashboard_db, funnel, pages, usage_chart
from services.api.deps import OrgDep, PoolDep, PrincipalDep
from services.api.funnel import RecentRates
from services.api.progress import measure
from services.api.routes import inbox

router = APIRouter(tags=["dashboard"], include_in_schema=False)
api_router = APIRouter(prefix="/dashboard", tags=["dashboard"])

CHART_DAYS = 30


class PlanOut(BaseModel):
    plan: str | None = Field(description="null: no subscription is recorded")
    monthly_segment_allowance: int | None
    used_this_month: int
    used_percent: int | None
    account_max_segments: int | None = Field(description="the account's cap on any one campaign")
    test_mode: bool


class UsageDayOut(BaseModel):
    day: date
    segments: int
    messages: int
    failed: int
    cost: Decimal


class UsageOut(BaseModel):
    today: date = Field(description="today in the organisation's time zone")
    segments_today: int
    messages_today: int
    segments_this_month: int
    messages_this_month: int
    failed_this_month: int
    cost_this_month: Decimal = Field(description="Textpulse's estimate")
    actual_cost_this_month: Decimal = Field(description="Twilio's reported prices where known, the estimate elsewhere")
    cost_provisional_this_month: bool = Field(description="true while some of this month's texts have no price")
    days: list[UsageDayOut] = Field(description=f"the last {CHART_DAYS} days, oldest first, zeros included")


class SendingOut(BaseModel):
    campaign_id: UUID
    name: str
    state: CampaignState
    run_id: UUID
    run_state: str
    state_reason: str | None
    total: int = Field(description="recipients handed to the dispatcher; 0 while the audience is resolved")
    sent: int
    failed: int
    dropped: int
    outside_window: int = Field(description="not sent: their local window does not open before the hold limit")
    frequency_capped: int = Field(description="not sent: over the organisation's marketing cap or a state's limit")
    done: int
    percent: int
    per_minute: int
    expected_finish: datetime | None


class UpcomingOut(BaseModel):
    id: UUID
    name: str
    next_occurrence_at: datetime
    schedule: dict[str, Any]


class HomeOut(BaseModel):
    organisation: str
    time_zone: str
    plan: PlanOut
    usage: UsageOut
    campaigns_by_state: dict[CampaignState, int]
    sending: list[SendingOut]
    upcoming: list[UpcomingOut]
    rates: RecentRates = Field(description=f"click-through and opt-out rates of the last {CHART_DAYS} days' runs")


@api_router.get("/home", summary="Everything Home shows")
async def home_data(org: OrgDep, pool: PoolDep) -> HomeOut:
    async with pool.acquire() as conn:
        return await load_home(conn, org.id, org.name, org.time_zone, org.account_max_segments)


@api_router.get("/sending", summary="Live progress of the campaigns sending now")
async def sending_data(org: OrgDep, pool: PoolDep) -> list[SendingOut]:
    async with pool.acquire() as conn:
        return await load_sending(conn, org.id)


@router.get("/", response_class=HTMLResponse)
async def home_page(request: Request, principal: PrincipalDep, pool: PoolDep) -> HTMLResponse:
    org = principal.org
    async with pool.acquire() as conn:
        home = await load_home(conn, org.id, org.name, org.time_zone, org.account_max_segments)
        unread = await inbox.unread_count(conn, org.id)
    series = [usage_chart.DayUsage(d.day, d.segments, d.messages, d.failed, d.cost) for d in home.usage.days]
    return pages.render(request, "home.html", principal=principal, nav="home", home=home, unread=unread,
                        chart=usage_chart.chart_data(series), chart_totals=usage_chart.totals(series))


async def load_home(
    conn: Connection, org_id: UUID, name: str, time_zone: str, account_max_segments: int | None
) -> HomeOut:
    today = datetime.now(ZoneInfo(time_zone)).date()
    month_start = today.replace(day=1)
    chart_start = today - timedelta(days=CHART_DAYS - 1)
    rows = await dashboard_db.usage_days(conn, org_id, min(month_start, chart_start), today)
    month = usage_chart.totals(usage_chart.daily_series(rows, last=today, days=(today - month_start).days + 1))
    month_rows = [r for r in rows if r["day"] >= month_start]
    chart = usage_chart.daily_series(rows, last=today, days=CHART_DAYS)
    subscription = await dashboard_db.subscription(conn, org_id) or {}
    account = await dashboard_db.account_summary(conn, org_id) or {}
    allowance = subscription.get("monthly_segment_allowance")
    counts = await dashboard_db.campaign_state_counts(conn, org_id)
    return HomeOut(
        organisation=name,
        time_zone=time_zone,
        plan=PlanOut(
            plan=subscription.get("plan"),
            monthly_segment_allowance=allowance,
            used_this_month=month.segments,
            used_percent=(100 * month.segments // allowance) if allowance else None,
            account_max_segments=account.get("max_segments", account_max_segments),
            test_mode=bool(account.get("test_mode")),
        ),
        usage=UsageOut(
            today=today,
            segments_today=chart[-1].segments,
            messages_today=chart[-1].messages,
            segments_this_month=month.segments,
            messages_this_month=month.messages,
            failed_this_month=month.failed,
            cost_this_month=month.cost,
            actual_cost_this_month=sum((r["actual_cost"] for r in month_rows), Decimal(0)),
            cost_provisional_this_month=any(r["settled_messages"] < r["messages"] for r in month_rows),
            days=[UsageDayOut(day=d.day, segments=d.segments, messages=d.messages, failed=d.failed, cost=d.cost)
                  for d in chart],
        ),
        campaigns_by_state={state: counts.get(state.value, 0) for state in CampaignState},
        sending=await load_sending(conn, org_id),
        upcoming=[UpcomingOut(**r) for r in await dashboard_db.upcoming_campaigns(conn, org_id)],
        rates=await funnel.recent_rates(conn, org_id, CHART_DAYS),
    )


async def load_sending(conn: Connection, org_id: UUID) -> list[SendingOut]:
    out = []
    for row in await dashboard_db.sending_progress(conn, org_id):
        done = row["sent"] + row["failed"] + row["dropped"] + row["outside_window"] + row["frequency_capped"]
        progress = measure(total=row["targeted"], done=done, recent=row["recent"], window_s=dashboard_db.RATE_WINDOW_S,
                           started_at=row["started_at"], now=row["measured_at"] or datetime.now(UTC),
                           segments_per_second=row["segments_per_second"])
        paused = row["state"] == CampaignState.PAUSED or row["run_state"] == "paused"
        out.append(SendingOut(
            campaign_id=row["campaign_id"], name=row["name"], state=row["state"], run_id=row["run_id"],
            run_state=row["run_state"], state_reason=row["state_reason"], total=progress.total, sent=row["sent"],
            failed=row["failed"], dropped=row["dropped"], outside_window=row["outside_window"],
            frequency_capped=row["frequency_capped"], done=progress.done, percent=progress.percent,
            per_minute=0 if paused else progress.per_minute,
            expected_finish=None if paused else progress.expected_finish,
        ))
    return out
