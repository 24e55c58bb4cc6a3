"""Volume caps of unverified toll-free senders. Pure: the periods and the check; ``now`` is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PERIODS = ("day", "week", "month")


def is_capped(verification: str, to: str) -> bool:
    """Whether a text from a sender in this verification state to ``to`` falls under the volume caps:
    Twilio blocks unverified toll-free numbers to US/Canada (30032) and still charges, so such a text
    goes only under the caps the organisation chose for that state, and is refused without them."""
    return verification != "verified" and to.startswith("+1")


@dataclass(frozen=True)
class CapPolicy:
    per_day: int | None
    per_week: int | None
    per_month: int | None
    when_reached: str  # "hold" | "fail"

    def limits(self) -> dict[str, int]:
        caps = {"day": self.per_day, "week": self.per_week, "month": self.per_month}
        return {period: cap for period, cap in caps.items() if cap is not None}


def period_start(period: str, now: datetime) -> datetime:
    """The UTC calendar period containing ``now``: the day, the ISO week (from Monday), the month."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period_start(period: str, now: datetime) -> datetime:
    start = period_start(period, now)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(weeks=1)
    return (start + timedelta(days=32)).replace(day=1)


def first_cap_reached(used: dict[str, int], limits: dict[str, int], segments: int) -> str | None:
    """The period whose cap ``segments`` more would pass (the longest first: it opens last), or None."""
    for period in reversed(PERIODS):
        if period in limits and used.get(period, 0) + segments > limits[period]:
            return period
    return None
