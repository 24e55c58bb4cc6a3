"""When a campaign goes out: now, once at a local date and time, or on an RFC 5545 RRULE. Pure.

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    >>> weekly = recurring("FREQ=MONTHLY;BYDAY=2TU;COUNT=3", datetime(2026, 3, 1, 9), "America/New_York", now=now)
    >>> [t.isoformat() for t in occurrences(weekly, after=now, count=5)]
    ['2026-03-10T13:00:00+00:00', '2026-04-14T13:00:00+00:00', '2026-05-12T13:00:00+00:00']

Staff give local wall-clock times; they are kept as local time plus zone (the organisation's), and every
occurrence is computed as a UTC instant. Wall-clock times that do not exist once:

- In a spring-forward gap (02:30 on 8 March 2026 in New York) the occurrence goes out at the first valid
  instant after it: the moment the clocks jump, 03:00 EDT. (RFC 5545 section 3.3.5 would read it with the
  offset before the gap, 03:30 EDT; the first valid time is closer to what was asked and never earlier.)
- In a fall-back overlap (01:30 on 1 November 2026 in New York) the first of the two is used (RFC 5545).

Recurrences are expanded on wall-clock time by ``dateutil.rrule`` and then resolved; two that resolve to
the same instant go out once. So a daily 01:30 goes out once on a fall-back day, an hourly rule skips the
repeated hour, and an hourly rule's 02:00 and 03:00 on a spring-forward night are one occurrence.

Nothing here reads the clock: ``now`` is always passed in. Bad input raises :class:`InvalidSchedule`,
whose ``field`` is the API field at fault (``at``, ``start``, ``rrule``, ``time_zone``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import MINUTELY, SECONDLY, rrule, rrulestr

from libs.common.errors import PermanentError

# Occurrences further ahead than this are not looked for: a rule whose next one is further away is
# treated as never firing, and a send-at further ahead is refused.
HORIZON: Final = timedelta(days=5 * 366)
MAX_RRULE_LENGTH: Final = 500
MAX_INTERVAL: Final = 1000


class InvalidSchedule(PermanentError):
    """A schedule that cannot be accepted; ``field`` names the input at fault."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(code, f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class SendNow:
    """Sent as soon as the scheduler sees it; ``requested_at`` is when staff asked (UTC)."""

    requested_at: datetime


@dataclass(frozen=True, slots=True)
class SendAt:
    """Sent once at ``at``, a wall-clock time (naive) in ``time_zone``."""

    at: datetime
    time_zone: str


@dataclass(frozen=True, slots=True)
class Recurring:
    """Sent at each occurrence of ``rrule`` (no DTSTART), counted from ``start`` (naive, in ``time_zone``)."""

    rrule: str
    start: datetime
    time_zone: str


Schedule = SendNow | SendAt | Recurring


# ---------------------------------------------------------------------------------------------
# Time zones and wall-clock times


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; raise InvalidSchedule (field ``time_zone``) if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidSchedule("time_zone", "time_zone_unknown", f"{name!r} is not an IANA time zone") from None


def resolve_local(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock time ``local`` (naive) in ``tz``, by the rules in the module docstring."""
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == local:
        return first  # it exists; fold=0 is the first of two in an overlap
    # In a gap. fold=1 reads it with the offset after the jump (an instant before the jump), fold=0 with
    # the offset before (an instant after): the jump is the first instant between them whose wall-clock
    # time is not before `local`. Zone transitions fall on whole seconds.
    lo = int(local.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    hi = int(first.timestamp()) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(datetime.fromtimestamp(mid, UTC), tz) >= local:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def to_local(instant: datetime, time_zone: str) -> datetime:
    """``instant`` as an aware wall-clock time in ``time_zone`` (for showing occurrences)."""
    return instant.astimezone(zone(time_zone))


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _local_naive(value: datetime, tz: ZoneInfo) -> datetime:
    """A naive value is already wall-clock time; an aware one is converted to ``tz``'s wall clock."""
    return value if value.tzinfo is None else _wall(value, tz)


# ---------------------------------------------------------------------------------------------
# Building validated schedules


def send_now(now: datetime) -> SendNow:
    return SendNow(requested_at=now.astimezone(UTC))


def send_at(at: datetime, time_zone: str, *, now: datetime) -> SendAt:
    """A one-time send at ``at`` (wall-clock in ``time_zone``; an aware value is converted to it).

    Raises InvalidSchedule: ``time_zone`` unknown, ``at`` in the past or more than five years ahead.
    """
    tz = zone(time_zone)
    local = _local_naive(at, tz)
    instant = resolve_local(local, tz)
    if instant < now:
        shown = local.isoformat(sep=" ", timespec="minutes")
        raise InvalidSchedule("at", "schedule_in_past", f"{shown} in {time_zone} is in the past")
    if instant > now + HORIZON:
        raise InvalidSchedule("at", "schedule_too_far", "is more than five years ahead")
    return SendAt(at=local, time_zone=time_zone)


def recurring(rule: str, start: datetime, time_zone: str, *, now: datetime) -> Recurring:
    """A recurring send on ``rule`` (an RRULE without DTSTART), counted from ``start`` in ``time_zone``.

    Raises InvalidSchedule: ``time_zone`` unknown; ``rrule`` not parseable, more often than hourly
    (MINUTELY, SECONDLY, several BYMINUTE or BYSECOND values), or without an occurrence after ``now``
    within five years (UNTIL or COUNT already past, or a date that never exists such as 30 February).
    """
    tz = zone(time_zone)
    schedule = Recurring(rrule=_normalise_rrule(rule, tz), start=_local_naive(start, tz), time_zone=time_zone)
    if not occurrences(schedule, after=now, count=1):
        raise InvalidSchedule(
            "rrule", "rrule_never_fires", f"{schedule.rrule} has no occurrence after now within five years"
        )
    return schedule


_PART = re.compile(r"^([A-Z]+)=([A-Z0-9,+\-:]+)$")
_ALLOWED_PARTS: Final = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYYEARDAY", "BYWEEKNO",
     "BYHOUR", "BYMINUTE", "BYSECOND", "BYSETPOS", "WKST"}
)


def _normalise_rrule(rule: str, tz: ZoneInfo) -> str:
    """Check ``rule`` and return it upper-cased, without "RRULE:", with UNTIL as local wall-clock time."""
    text = rule.strip()
    if not text or len(text) > MAX_RRULE_LENGTH or "\n" in text or "\r" in text:
        raise InvalidSchedule(
            "rrule", "rrule_invalid", f"must be one RRULE line of at most {MAX_RRULE_LENGTH} characters"
        )
    text = re.sub(r"^RRULE:", "", text.upper())
    parts: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        match = _PART.match(part)
        if not match:
            raise InvalidSchedule("rrule", "rrule_invalid", f"{part!r} is not NAME=VALUE")
        name, value = match.groups()
        if name in ("DTSTART", "TZID"):
            raise InvalidSchedule("rrule", "rrule_invalid", f"{name} is not allowed here: give the first date in start")
        if name not in _ALLOWED_PARTS:
            raise InvalidSchedule("rrule", "rrule_invalid", f"{name} is not supported")
        if name in parts:
            raise InvalidSchedule("rrule", "rrule_invalid", f"{name} is given twice")
        parts[name] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise InvalidSchedule("rrule", "rrule_invalid", "FREQ is required")
    if freq in ("MINUTELY", "SECONDLY") or any(len(parts.get(p, "").split(",")) > 1 for p in ("BYMINUTE", "BYSECOND")):
        raise InvalidSchedule("rrule", "rrule_too_frequent", "a campaign may go out at most once an hour")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidSchedule("rrule", "rrule_invalid", "give COUNT or UNTIL, not both")
    interval = parts.get("INTERVAL", "1")
    if not interval.isdigit() or not 1 <= int(interval) <= MAX_INTERVAL:
        # INTERVAL=0 would make dateutil loop for ever.
        raise InvalidSchedule("rrule", "rrule_invalid", f"INTERVAL must be between 1 and {MAX_INTERVAL}")
    if "UNTIL" in parts:
        parts["UNTIL"] = _local_until(parts["UNTIL"], tz)
    normalised = ";".join(f"{name}={value}" for name, value in parts.items())
    _parse(normalised, datetime(2000, 1, 1))  # refuses what dateutil refuses, naming the part
    return normalised


def _local_until(value: str, tz: ZoneInfo) -> str:
    """UNTIL as floating wall-clock time: a UTC ``...Z`` is converted, a bare date means its whole day."""
    try:
        if re.fullmatch(r"\d{8}", value):
            until = datetime.strptime(value, "%Y%m%d").replace(hour=23, minute=59, second=59)
        elif value.endswith("Z"):
            until = _wall(datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC), tz)
        else:
            until = datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError:
        raise InvalidSchedule("rrule", "rrule_invalid", f"UNTIL={value} is not a date or date-time") from None
    return until.strftime("%Y%m%dT%H%M%S")


def _parse(text: str, start: datetime) -> rrule:
    try:
        parsed = rrulestr(text, dtstart=start)
    except (ValueError, TypeError) as exc:
        raise InvalidSchedule("rrule", "rrule_invalid", f"not a valid RRULE ({exc})") from None
    if not isinstance(parsed, rrule) or parsed._freq in (MINUTELY, SECONDLY):  # type: ignore[attr-defined]
        raise InvalidSchedule("rrule", "rrule_invalid", "must be a single RRULE")
    return parsed


# ---------------------------------------------------------------------------------------------
# Occurrences


def occurrences(schedule: Schedule, *, after: datetime, count: int, inclusive: bool = False) -> list[datetime]:
    """The next ``count`` occurrences (UTC) after ``after`` (or at it, with ``inclusive``), in order.

    Never more than five years ahead of ``after``; empty when the schedule has no more.
    """
    limit = after + HORIZON
    found: Iterable[datetime]
    if isinstance(schedule, SendNow):
        found = [schedule.requested_at]
    elif isinstance(schedule, SendAt):
        found = [resolve_local(schedule.at, zone(schedule.time_zone))]
    else:
        found = _recurrences(schedule, after)
    wanted = (t for t in found if (t >= after if inclusive else t > after))
    return [t for t in islice(wanted, count) if t <= limit]


def next_occurrence(schedule: Schedule, *, after: datetime, inclusive: bool = False) -> datetime | None:
    found = occurrences(schedule, after=after, count=1, inclusive=inclusive)
    return found[0] if found else None


def _recurrences(schedule: Recurring, after: datetime) -> Iterator[datetime]:
    """Resolved occurrences from shortly before ``after`` on, each instant once."""
    tz = zone(schedule.time_zone)
    # Start a few hours early on the wall clock: around a DST change, a wall-clock time before
    # after's may resolve to an instant after it. Callers filter on the instant.
    begin = max(_wall(after, tz) - timedelta(hours=3), schedule.start - timedelta(seconds=1))
    previous: datetime | None = None
    for local in _bounded(_parse(schedule.rrule, schedule.start), begin, begin + HORIZON + timedelta(days=1)):
        instant = resolve_local(local, tz)
        if instant != previous:
            yield instant
        previous = instant


# The Gregorian calendar repeats exactly every 400 years (146,097 days, a whole number of weeks).
_CYCLE_YEARS: Final = 400


def _bounded(rule: rrule, after: datetime, until: datetime) -> Iterator[datetime]:
    """Wall-clock occurrences of ``rule`` after ``after`` and up to ``until``, in bounded time.

    dateutil checks UNTIL only on candidates, so a rule with no candidates at all (30 February, every
    day) is scanned up to the year 9999: seconds of CPU. The same rule shifted by whole 400-year cycles
    is the same rule, and shifted to end just before 9999 its scan stops after at most ~400 years.
    """
    shift = _CYCLE_YEARS * max(0, (datetime.max.year - 1 - until.year) // _CYCLE_YEARS)
    # dateutil has no public getter for FREQ, UNTIL or DTSTART, so its stubs do not declare them.
    original_until = rule._until  # type: ignore[attr-defined]
    shifted = rule.replace(
        dtstart=_add_years(rule._dtstart, shift),  # type: ignore[attr-defined]
        until=_add_years(original_until, shift) if original_until else None,
    )
    for local in shifted.xafter(_add_years(after, shift), count=None, inc=False):
        real = _add_years(local, -shift)
        if real > until:
            return
        yield real


def _add_years(value: datetime, years: int) -> datetime:
    return value.replace(year=value.year + years)  # 29 February survives a whole number of 400-year cycles


# ---------------------------------------------------------------------------------------------
# Lateness


def is_missed(occurrence_at: datetime, now: datetime, *, max_lateness: timedelta, send_when_late: bool) -> bool:
    """True when an occurrence found at ``now`` is too late to send and the campaign did not ask to."""
    return not send_when_late and now - occurrence_at > max_lateness


# ---------------------------------------------------------------------------------------------
# Storage (campaigns.schedule, jsonb)


def to_json(schedule: Schedule | None) -> dict[str, Any]:
    if schedule is None:
        return {"kind": "none"}
    if isinstance(schedule, SendNow):
        return {"kind": "now", "requested_at": schedule.requested_at.isoformat()}
    if isinstance(schedule, SendAt):
        return {"kind": "at", "at": schedule.at.isoformat(), "time_zone": schedule.time_zone}
    return {"kind": "rrule", "rrule": schedule.rrule, "start": schedule.start.isoformat(),
            "time_zone": schedule.time_zone}


def from_json(data: Mapping[str, Any]) -> Schedule | None:
    """Read a stored schedule (``None`` for ``{"kind": "none"}``); raise InvalidSchedule if it is malformed."""
    try:
        kind = data["kind"]
        if kind == "none":
            return None
        if kind == "now":
            return SendNow(requested_at=datetime.fromisoformat(data["requested_at"]))
        if kind == "at":
            zone(data["time_zone"])
            return SendAt(at=datetime.fromisoformat(data["at"]), time_zone=data["time_zone"])
        if kind == "rrule":
            zone(data["time_zone"])
            _parse(data["rrule"], datetime(2000, 1, 1))
            return Recurring(rrule=data["rrule"], start=datetime.fromisoformat(data["start"]),
                             time_zone=data["time_zone"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidSchedule("schedule", "schedule_invalid", f"stored schedule is malformed ({exc!r})") from None
    raise InvalidSchedule("schedule", "schedule_invalid", f"unknown schedule kind {kind!r}")
