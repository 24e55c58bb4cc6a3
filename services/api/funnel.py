"""What a run's texts achieved: the recipient funnel, the per-recipient CSV export, and Home's 30-day
click-through and opt-out rates (queries in funnel.sql).

    funnel = await run_funnel(conn, org_id, campaign_id, run_id)   # None: not this organisation's run
    funnel.sent, funnel.clicked.people, funnel.failures[0].error_code

The funnel's steps are counted from where each fact lives: the run's snapshot (who was targeted and who
was left out, and why), the send ledger (sent, delivered, failed with Twilio's code, and who the
dispatcher ended unsent), link_clicks, inbound replies, and the usage rollup's opt-outs per run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import asyncpg
from pydantic import BaseModel, Field

from libs.common.db import Connection, Queries, transaction
from libs.common.twilio_facts import error_sentence
from services.api.spreadsheet_cells import safe_cell

QUERIES: Final = Queries.load(Path(__file__).with_name("funnel.sql"))

EXPORT_PAGE: Final = 2_000
RATE_DAYS: Final = 30
EXPORT_COLUMNS: Final = ("position", "member_id", "phone", "outcome", "error_code", "sent_at", "delivered_at",
                         "clicks", "bot_clicks", "replied_at", "reply")


class Exclusions(BaseModel):
    """Recipients left out, by reason: by the audience service before sending, or by the dispatcher."""

    opted_out: int = Field(description="suppressed when the audience was resolved, or since")
    duplicate: int = Field(description="the same number or member earlier in the audience")
    invalid_number: int
    missing_mobile: int
    landline: int = Field(description="Twilio said earlier the number is a landline (21614)")
    unreachable: int = Field(description="Twilio said earlier the number cannot receive texts")
    render_failed: int
    quiet_hours: int = Field(description="the member's sending window did not open in time")
    frequency_cap: int
    over_limit: int = Field(description="over the campaign's segment limit, or a sender's cap")
    not_sent: int = Field(description="expired or cancelled before sending")


class Failure(BaseModel):
    error_code: int | None
    recipients: int
    meaning: str


class Clicks(BaseModel):
    people: int = Field(description="recipients who followed a link, link-preview bots apart")
    people_clicks: int
    bots: int = Field(description="recipients whose link a link-preview bot fetched")
    bot_clicks: int


class RunFunnel(BaseModel):
    run_id: UUID
    track_links: bool
    targeted: int
    excluded: int
    exclusions: Exclusions
    in_progress: int = Field(description="queued or being sent: no outcome yet")
    sent: int
    delivered: int
    failed: int
    failures: list[Failure]
    clicked: Clicks
    replied: int = Field(description="recipients who replied (STOP and START apart)")
    opted_out_after: int = Field(description="recipients who opted out in answer to this text")


class RecentRates(BaseModel):
    days: int
    delivered: int
    tracked_delivered: int
    clicked: int
    opted_out: int
    click_through_percent: float | None = Field(description="people who clicked / delivered texts of tracked runs")
    opt_out_percent: float | None = Field(description="opt-outs / delivered texts")


async def run_funnel(conn: Connection, org_id: UUID, campaign_id: UUID, run_id: UUID) -> RunFunnel | None:
    row = await QUERIES.fetchrow(conn, "run-funnel", org_id=org_id, campaign_id=campaign_id, run_id=run_id)
    if row is None:
        return None
    failures = await QUERIES.fetch(conn, "run-funnel-failures", org_id=org_id, run_id=run_id)
    return _funnel(dict(row), [Failure(error_code=f["error_code"], recipients=f["recipients"],
                                       meaning=error_sentence(f["error_code"])) for f in failures])


def _funnel(row: dict[str, Any], failures: list[Failure]) -> RunFunnel:
    exclusions = Exclusions(
        opted_out=row["opted_out"] + row["suppressed"], duplicate=row["duplicate"],
        invalid_number=row["invalid_number"], missing_mobile=row["missing_mobile"], landline=row["landline"],
        unreachable=row["unreachable"], render_failed=row["render_failed"], quiet_hours=row["quiet_hours"],
        frequency_cap=row["frequency_cap"], over_limit=row["over_limit"] + row["sender_cap"],
        not_sent=row["not_sent"],
    )
    return RunFunnel(
        run_id=row["run_id"], track_links=row["track_links"], targeted=row["targeted"],
        excluded=sum(exclusions.model_dump().values()), exclusions=exclusions,
        in_progress=row["queued"] - row["ended"], sent=row["sent"], delivered=row["delivered"],
        failed=row["failed"], failures=failures,
        clicked=Clicks(people=row["people"], people_clicks=row["people_clicks"], bots=row["bots"],
                       bot_clicks=row["bot_clicks"]),
        replied=row["replied"], opted_out_after=row["opted_out_after"],
    )


async def run_exists(conn: Connection, org_id: UUID, campaign_id: UUID, run_id: UUID) -> bool:
    return bool(await QUERIES.fetchval(conn, "run-exists", org_id=org_id, campaign_id=campaign_id, run_id=run_id))


async def recent_rates(conn: Connection, org_id: UUID, days: int = RATE_DAYS) -> RecentRates:
    row = await QUERIES.fetchrow(conn, "recent-rates", org_id=org_id, days=days)
    assert row is not None  # aggregates answer one row
    return RecentRates(
        days=days, delivered=row["delivered"], tracked_delivered=row["tracked_delivered"], clicked=row["clicked"],
        opted_out=row["opted_out"],
        click_through_percent=_percent(row["clicked"], row["tracked_delivered"]),
        opt_out_percent=_percent(row["opted_out"], row["delivered"]),
    )


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


async def export_rows(pool: asyncpg.Pool, org_id: UUID, run_id: UUID) -> AsyncIterator[str]:
    """The run's recipients as CSV, a page at a time through a cursor: memory stays flat for any run.
    Free text (the member id, the reply) goes through ``safe_cell``, as the suppression export's does."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    yield out.getvalue()
    query = QUERIES["run-export"]
    async with transaction(pool) as conn:
        cursor = await conn.cursor(query.sql, *query.args({"org_id": org_id, "run_id": run_id}))
        while rows := await cursor.fetch(EXPORT_PAGE):
            out.seek(0)
            out.truncate()
            for r in rows:
                writer.writerow([
                    r["position"], safe_cell(r["member_id"]), r["e164"] or "", outcome(r),
                    "" if r["error_code"] is None else r["error_code"], _time(r["sent_at"]),
                    _time(r["delivered_at"]), r["clicks"], r["bot_clicks"], _time(r["replied_at"]),
                    safe_cell(r["reply"]),
                ])
            yield out.getvalue()


def outcome(row: dict[str, Any] | asyncpg.Record) -> str:
    """One word for where a recipient ended: ``excluded:<reason>``, Twilio's status once there is one,
    else the ledger's state, else ``queued``."""
    if row["status"] == "excluded":
        return f"excluded:{row['reason']}"
    return str(row["twilio_status"] or row["state"] or "queued")


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


class Step(BaseModel):
    key: str
    label: str
    count: int
    percent: float = Field(description="of the recipients targeted, for the bar's length")


def steps(funnel: RunFunnel) -> list[Step]:
    """The funnel chart's bars, widest first: every step as a share of the recipients targeted."""
    counts = [
        ("targeted", "Targeted", funnel.targeted),
        ("excluded", "Left out", funnel.excluded),
        ("sent", "Sent", funnel.sent),
        ("delivered", "Delivered", funnel.delivered),
        ("failed", "Failed", funnel.failed),
        ("clicked", "Clicked a link", funnel.clicked.people),
        ("replied", "Replied", funnel.replied),
        ("opted_out", "Opted out", funnel.opted_out_after),
    ]
    whole = funnel.targeted
    return [Step(key=key, label=label, count=count, percent=round(100 * count / whole, 1) if whole else 0.0)
            for key, label, count in counts]


EXCLUSION_LABELS: Final = {
    "opted_out": "Opted out", "duplicate": "Duplicate", "invalid_number": "Invalid number",
    "missing_mobile": "No mobile number", "landline": "Landline", "unreachable": "Cannot receive texts",
    "render_failed": "Message could not be filled in", "quiet_hours": "Quiet hours", "frequency_cap": "Frequency cap",
    "over_limit": "Over the limit", "not_sent": "Expired or cancelled",
}
