"""``/api/v1/settings/send-rules``: the organisation's own send window, days, holidays and marketing cap.

They only tighten the law's (:mod:`libs.common.quiet_hours`): the window is in each recipient's local time
and must lie inside the federal hours (8 am-9 pm); the states' stricter hours still apply inside it. A
``null`` window means the law's hours alone. The marketing cap is at most ``texts`` marketing texts per
member in any ``days`` days, across all campaigns; transactional campaigns skip it (never the quiet hours).
Bad input is a 422 naming the field: ``send_window_wider_than_law``, ``send_window_empty``,
``send_days_empty``, ``send_day_duplicate``, ``holiday_duplicate``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import Connection, transaction
from libs.common.quiet_hours import FEDERAL, Hours
from libs.common.send_verdict import marketing_cap_of, org_window_of
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, OrgDep, PoolDep
from services.api.errors import InvalidInput
from services.api.send_planning import QUERIES, send_rules_row

router = APIRouter(prefix="/settings/send-rules", tags=["settings"])

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: Final[tuple[Weekday, ...]] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                        "sunday")
ALL_DAY: Final = Hours(0, 1440)  # the database's "no window of its own"
MAX_HOLIDAYS: Final = 100
# A local clock time, hours and minutes (JSON Schema's "time" would want a UTC offset, which a window has not).
LocalTime = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class SendWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: LocalTime = Field(description="local time texts may start, HH:MM, e.g. 09:00")
    end: LocalTime = Field(description="local time texts stop, HH:MM, e.g. 19:30 (none from then on)")


class MarketingCap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: Annotated[int, Field(ge=1, le=100)]
    days: Annotated[int, Field(ge=1, le=365)]


class SendRulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "window": {"start": "09:00", "end": "19:00"}, "days": ["monday", "tuesday", "wednesday", "thursday",
                                                                 "friday"],
        "holidays": ["2026-12-25"], "marketing_cap": {"texts": 3, "days": 7}}]})

    window: SendWindow | None = Field(description="null: the law's hours alone")
    days: list[Weekday] = Field(min_length=1, max_length=7, description="weekdays texts are sent on")
    holidays: list[date] = Field(default_factory=list, max_length=MAX_HOLIDAYS,
                                 description="local dates with no texts")
    marketing_cap: MarketingCap | None = Field(description="null: no cap of the organisation's own")


class SendRulesOut(SendRulesIn):
    time_zone: str = Field(description="the organisation's zone, for recipients whose location is unknown")
    law_window: SendWindow = Field(description="the federal hours the window must lie within")


def _minutes(at: str) -> int:
    hours, minutes = at.split(":")
    return int(hours) * 60 + int(minutes)


def _time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _law_hours() -> Hours:
    """The federal hours on every day: an organisation's window may not reach outside them."""
    return Hours(min(h.start for h in FEDERAL.hours.values()), max(h.end for h in FEDERAL.hours.values()))


def check_send_rules(body: SendRulesIn) -> Hours:
    """The window in minutes, or a 422 naming the field for limits that would widen the law's or send never."""
    law = _law_hours()
    if body.window is None:
        hours = ALL_DAY
    else:
        hours = Hours(_minutes(body.window.start), _minutes(body.window.end))
        if hours.start >= hours.end:
            raise InvalidInput("window.end", "send_window_empty", "the window must end after it starts")
        if hours.start < law.start or hours.end > law.end:
            raise InvalidInput("window", "send_window_wider_than_law",
                               f"the window can only narrow the law's hours: between {_time(law.start)} and "
                               f"{_time(law.end)} in the member's local time")
    if len(set(body.days)) != len(body.days):
        raise InvalidInput("days", "send_day_duplicate", "each weekday is listed once")
    if len(set(body.holidays)) != len(body.holidays):
        raise InvalidInput("holidays", "holiday_duplicate", "each holiday is listed once")
    return hours


def _out(row: asyncpg.Record) -> SendRulesOut:
    law = _law_hours()
    window = org_window_of(row)
    cap = marketing_cap_of(row)
    return SendRulesOut(
        window=None if window.hours == ALL_DAY else SendWindow(start=_time(window.hours.start),
                                                               end=_time(window.hours.end % 1440)),
        days=[WEEKDAYS[d] for d in sorted(window.days)], holidays=sorted(window.holidays),
        marketing_cap=MarketingCap(texts=cap[0], days=cap[1]) if cap else None,
        time_zone=row["time_zone"], law_window=SendWindow(start=_time(law.start), end=_time(law.end)))


async def send_rules_out(conn: Connection, org_id: UUID) -> SendRulesOut:
    return _out(await send_rules_row(conn, org_id))


@router.get("", summary="The organisation's own send window, days, holidays and marketing cap")
async def read_send_rules(org: OrgDep, pool: PoolDep) -> SendRulesOut:
    async with pool.acquire() as conn:
        return await send_rules_out(conn, org.id)


@router.put("", summary="Set the organisation's send window, days, holidays and marketing cap (only tighter "
                        "than the law)")
async def write_send_rules(body: SendRulesIn, _admin: AdminDep, caller: CallerDep, org: OrgDep,
                           pool: PoolDep) -> SendRulesOut:
    hours = check_send_rules(body)
    async with transaction(pool) as conn:
        before = await send_rules_out(conn, org.id)
        await QUERIES.execute(conn, "set-send-rules", org_id=org.id, start_min=hours.start, end_min=hours.end,
                              days=sorted(WEEKDAYS.index(d) for d in body.days), holidays=sorted(body.holidays),
                              cap_texts=body.marketing_cap.texts if body.marketing_cap else None,
                              cap_days=body.marketing_cap.days if body.marketing_cap else None)
        after = await send_rules_out(conn, org.id)
        await audit.record(conn, caller, "send_rules_changed", "settings", caller.org_id, before=before, after=after)
    return after
