"""A stored schedule (``campaigns.schedule``) in words, for lists and pages. Pure.

    >>> describe({"kind": "rrule", "rrule": "FREQ=MONTHLY;BYDAY=2TU;COUNT=6", "start": "2026-03-01T09:00:00",
    ...           "time_zone": "America/New_York"})
    'Monthly on the second Tuesday at 09:00, 6 times'
    >>> describe({"kind": "at", "at": "2026-03-10T09:00:00", "time_zone": "Europe/London"})
    'Once, Tue 10 Mar 2026 at 09:00'

A rule this module cannot put in words is shown as the rule itself; nothing is ever guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

_DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday",
         "SU": "Sunday"}
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
_UNITS = {"HOURLY": "hour", "DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}
_ADVERBS = {"HOURLY": "Hourly", "DAILY": "Daily", "WEEKLY": "Weekly", "MONTHLY": "Monthly", "YEARLY": "Yearly"}


def describe(schedule: Mapping[str, Any] | None) -> str:
    kind = (schedule or {}).get("kind", "none")
    if kind == "none":
        return "Not scheduled"
    if kind == "now":
        return "Sent now"
    if kind == "at":
        at = datetime.fromisoformat(schedule["at"])  # type: ignore[index]
        return f"Once, {at:%a} {at.day} {at:%b %Y} at {at:%H:%M}"
    if kind == "rrule":
        return describe_rrule(schedule["rrule"], datetime.fromisoformat(schedule["start"]))  # type: ignore[index]
    return "Unknown schedule"


def describe_rrule(rule: str, start: datetime) -> str:
    parts = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    freq = parts.pop("FREQ", "")
    interval = int(parts.pop("INTERVAL", "1") or 1)
    count = parts.pop("COUNT", None)
    until = parts.pop("UNTIL", None)
    byday = parts.pop("BYDAY", None)
    parts.pop("WKST", None)
    if freq not in _UNITS or parts:
        return f"Repeats ({rule})"
    text = _ADVERBS[freq] if interval == 1 else f"Every {interval} {_UNITS[freq]}s"
    if byday:
        days = [_day(token) for token in byday.split(",")]
        if None in days:
            return f"Repeats ({rule})"
        text += " on " + _join([d for d in days if d])
    elif freq == "WEEKLY":
        text += f" on {start:%A}"
    elif freq == "MONTHLY":
        text += f" on day {start.day}"
    if freq != "HOURLY":
        text += f" at {start:%H:%M}"
    if count:
        text += f", {count} times"
    elif until and re.fullmatch(r"\d{8}(T\d{6})?", until):
        end = datetime.strptime(until[:8], "%Y%m%d")
        text += f", until {end.day} {end:%b %Y}"
    return text


def _day(token: str) -> str | None:
    match = re.fullmatch(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", token)
    if not match:
        return None
    ordinal, day = match.groups()
    if ordinal is None:
        return _DAYS[day]
    word = _ORDINALS.get(int(ordinal))
    return f"the {word} {_DAYS[day]}" if word else None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
