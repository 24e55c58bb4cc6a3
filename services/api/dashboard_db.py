"""SQL for the dashboard's reads (``dashboard.sql``): Home, the campaign list and page, the pickers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.db import Connection, Queries

QUERIES = Queries.load(Path(__file__).with_name("dashboard.sql"))

Row = dict[str, Any]

_JSON_COLUMNS = ("schedule", "audience", "exclusions")
# How far back the sending rate looks: long enough to smooth the per-second pacing, short enough to
# show a pause within a minute.
RATE_WINDOW_S = 60.0


def _rows(records: list[asyncpg.Record]) -> list[Row]:
    rows = []
    for record in records:
        row = dict(record)
        for column in _JSON_COLUMNS:
            if isinstance(row.get(column), str):
                row[column] = json.loads(row[column])
        rows.append(row)
    return rows


def like_pattern(text: str) -> str:
    r"""``text`` for use inside ILIKE '%...%': its own % _ and \ match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def subscription(conn: Connection, org_id: UUID) -> Row | None:
    record = await QUERIES.fetchrow(conn, "subscription", org_id=org_id)
    return None if record is None else dict(record)


async def account_summary(conn: Connection, org_id: UUID) -> Row | None:
    record = await QUERIES.fetchrow(conn, "account-summary", org_id=org_id)
    return None if record is None else dict(record)


async def usage_days(conn: Connection, org_id: UUID, first: date, last: date) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "usage-days", org_id=org_id, first=first, last=last))


async def campaign_state_counts(conn: Connection, org_id: UUID) -> dict[str, int]:
    return {r["state"]: r["campaigns"] for r in await QUERIES.fetch(conn, "campaign-state-counts", org_id=org_id)}


async def sending_progress(conn: Connection, org_id: UUID) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "sending-progress", org_id=org_id, window_s=RATE_WINDOW_S))


async def upcoming_campaigns(conn: Connection, org_id: UUID, limit: int = 5) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "upcoming-campaigns", org_id=org_id, limit=limit))


async def search_campaigns(
    conn: Connection, org_id: UUID, states: Sequence[str] | None, q: str | None, limit: int, offset: int
) -> tuple[list[Row], int]:
    rows = _rows(await QUERIES.fetch(conn, "search-campaigns", org_id=org_id, states=list(states) if states else None,
                                     q=like_pattern(q) if q else None, limit=limit, offset=offset))
    return rows, rows[0]["total"] if rows else 0


async def campaign_runs(conn: Connection, org_id: UUID, campaign_id: UUID, limit: int = 50) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "campaign-runs", org_id=org_id, campaign_id=campaign_id, limit=limit))


async def campaign_run_errors(conn: Connection, org_id: UUID, campaign_id: UUID) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "campaign-run-errors", org_id=org_id, campaign_id=campaign_id))


async def run_recipients(
    conn: Connection, org_id: UUID, run_id: UUID, q: str | None, number: str | None, limit: int, offset: int
) -> tuple[list[Row], int]:
    """A page of the run's recipients matching ``q`` (member id, merge values) or ``number`` (digits of
    the number), and how many match in all."""
    pattern = like_pattern(q) if q else None
    filters = {"org_id": org_id, "run_id": run_id, "q": pattern, "number": number,
               "names": pattern if number is None else None}
    rows = _rows(await QUERIES.fetch(conn, "run-recipients", **filters, limit=limit, offset=offset))
    return rows, await QUERIES.fetchval(conn, "run-recipients-count", **filters)


async def senders(conn: Connection, org_id: UUID) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "senders", org_id=org_id))


async def member_lists(conn: Connection, org_id: UUID) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "member-lists", org_id=org_id))


async def csv_uploads(conn: Connection, org_id: UUID) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "csv-uploads", org_id=org_id))


async def recent_iqa_queries(conn: Connection, org_id: UUID) -> list[str]:
    return [r["query"] for r in await QUERIES.fetch(conn, "recent-iqa-queries", org_id=org_id)]


async def last_audience_size(conn: Connection, org_id: UUID, audience: dict[str, Any]) -> Row | None:
    record = await QUERIES.fetchrow(conn, "last-audience-size", org_id=org_id, audience=json.dumps(audience))
    return None if record is None else dict(record)


async def recent_alerts(conn: Connection, org_id: UUID, limit: int = 50) -> list[Row]:
    return _rows(await QUERIES.fetch(conn, "recent-alerts", org_id=org_id, limit=limit))
