"""Home's usage figures and its 30-day chart, laid out for an inline SVG. Pure.

The chart draws segments per day as bars and failed messages as a red bar inside each, on the same
count axis (a message is at least one segment, so failures rarely outgrow their day's bar; when they
do, the axis grows to fit them). Days without usage are drawn as zero, never skipped, so the bars
line up with the calendar. Every figure is also in the page's data table, for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
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


@dataclass(frozen=True, slots=True)
class Bar:
    day: DayUsage
    x: float
    width: float
    y: float
    height: float
    failed_y: float
    failed_height: float


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    bottom: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    empty: bool


TICKS = 4  # intervals on the count axis


def nice_tick(value: float) -> int:
    """The smallest whole 1, 2, 2.5 or 5 x 10^n that is at least ``value`` (at least 1): one axis step."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        tick = step * power
        if tick >= value and tick == int(tick):
            return int(tick)
    return 10 * power


def layout(series: list[DayUsage], *, width: int = 760, height: int = 240) -> Chart:
    left, right, top, bottom_margin = 52, 8, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom_margin
    bottom = float(top + plot_h)
    highest = max([d.segments for d in series] + [d.failed for d in series] + [0])
    step = nice_tick(highest / TICKS)
    peak = step * TICKS
    slot = plot_w / max(len(series), 1)
    bar_w = max(slot * 0.68, 1.0)

    def scale(value: int) -> float:
        # Anything above zero stays visible (2 px), however small next to the busiest day.
        return 0.0 if value <= 0 else max(plot_h * min(value, peak) / peak, 2.0)

    bars = []
    for i, d in enumerate(series):
        h, fh = scale(d.segments), scale(d.failed)
        x = left + i * slot + (slot - bar_w) / 2
        bars.append(Bar(d, round(x, 2), round(bar_w, 2), round(bottom - h, 2), round(h, 2),
                        round(bottom - fh, 2), round(fh, 2)))
    y_ticks = [Tick(round(bottom - plot_h * k / TICKS, 2), f"{step * k:,}") for k in range(TICKS + 1)]
    # A date label every week, counted back from the last day so that today is always labelled.
    x_ticks = [
        Tick(round(left + i * slot + slot / 2, 2), f"{d.day.day} {d.day:%b}")
        for i, d in enumerate(series)
        if (len(series) - 1 - i) % 7 == 0
    ]
    empty = not any(d.segments or d.failed for d in series)
    return Chart(width, height, left, bottom, bars, y_ticks, x_ticks, empty)
