"""Home's usage figures and its 30-day chart's data. Pure.

The chart (drawn by Chart.js in ``static/home.js``) shows segments per day as bars and failed messages
as a red bar inside each, on the same count axis (a message is at least one segment, so failures rarely
outgrow their day's bar); each day's messages and cost are in its tooltip. Days without usage are zero,
never skipped, so the bars line up with the calendar. Every figure is also in the page's data table, for
screen readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    segments: int = 0
    messages: int = 0
    failed: int = 0
    cost: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Totals:
    segments: int
    messages: int
    failed: int
    cost: Decimal


def daily_series(rows: Iterable[Mapping[str, Any]], *, last: date, days: int = 30) -> list[DayUsage]:
    """One entry per day from ``last - days + 1`` to ``last``, zero where ``rows`` has none."""
    by_day = {
        row["day"]: DayUsage(row["day"], row["segments"], row["messages"], row["failed"], Decimal(row["cost"]))
        for row in rows
    }
    first = last - timedelta(days=days - 1)
    return [by_day.get(first + timedelta(days=i), DayUsage(first + timedelta(days=i))) for i in range(days)]


def totals(series: Iterable[DayUsage], *, since: date | None = None) -> Totals:
    chosen = [d for d in series if since is None or d.day >= since]
    return Totals(
        segments=sum(d.segments for d in chosen),
        messages=sum(d.messages for d in chosen),
        failed=sum(d.failed for d in chosen),
        cost=sum((d.cost for d in chosen), Decimal(0)),
    )


def chart_data(series: list[DayUsage]) -> dict[str, list[Any]]:
    """The series as ``static/home.js`` hands it to Chart.js: parallel lists, one entry per day, oldest first.

    Labels are made here, in the organisation's calendar, so the browser's own time zone cannot shift a
    bar to the wrong day. Cost is a string of dollars rounded to the cent, as Home's totals are
    (JSON has no decimal type).
    """
    return {
        "labels": [f"{d.day.day} {d.day:%b}" for d in series],
        "titles": [f"{d.day:%a} {d.day.day} {d.day:%b}" for d in series],
        "segments": [d.segments for d in series],
        "messages": [d.messages for d in series],
        "failed": [d.failed for d in series],
        "cost": [str(d.cost.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) for d in series],
    }
