"""When a member may be texted: the recipient's location, the state rule table, the organisation's own window. Pure.

A recipient's :class:`Location` comes from the member's address when iMIS has one (a time zone if the source
gives one; else every zone the address's state spans, :mod:`libs.common.us_states`), else from the number's
area code (its state from :mod:`libs.common.area_code_states`, made from ``phonenumbers``' geocoder, and
its zones from ``phonenumbers``' time-zone data), else the organisation's time zone. Where the
address and the area code name different states, both states' rules apply, so the stricter one wins
(Oklahoma presumes an Oklahoma area code is an Oklahoma resident). A state or an area code that spans zones
(Florida: Eastern and Central; Alaska's 907: Anchorage and Adak) must be open in every one of them.

The window at an instant is the intersection of the federal hours, each applicable state's hours and the
organisation's own window, days and holidays (the organisation can only tighten), in the recipient's local
time.

    >>> from datetime import datetime, UTC
    >>> tulsa = resolve_location("+19185550100", org_time_zone="America/New_York")
    >>> tulsa.states, tulsa.time_zones
    (frozenset({'OK'}), ('America/Chicago',))
    >>> is_open(tulsa, datetime(2026, 12, 2, 2, 30, tzinfo=UTC))  # 8:30 pm in Tulsa
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from libs.common.area_code_states import AREA_CODE_STATES
from libs.common.us_states import STATE_ZONES, us_state

__all__ = ["FEDERAL", "STATE_RULES", "Hours", "Location", "OrgWindow", "StateRule", "is_open", "next_open",
           "resolve_location", "state_text_limit"]

EVERY_DAY: Final = frozenset(range(7))  # datetime.weekday(): Monday 0 .. Sunday 6


@dataclass(frozen=True, slots=True)
class Hours:
    """Sending is allowed from ``start`` to before ``end``, in minutes after local midnight (``end`` <= 1440)."""

    start: int
    end: int

    def clip(self, other: Hours) -> Hours:
        return Hours(max(self.start, other.start), min(self.end, other.end))


def _h(start_hour: int, end_hour: int) -> Hours:
    return Hours(start_hour * 60, end_hour * 60)


@dataclass(frozen=True, slots=True)
class StateRule:
    """A jurisdiction's hours by weekday (a day absent: no texts that day) and its texts per 24 h on one subject."""

    name: str
    hours: Mapping[int, Hours]
    texts_per_24h: int | None = None


def _daily(hours: Hours) -> dict[int, Hours]:
    return dict.fromkeys(EVERY_DAY, hours)


# The rule table. Hours are the recipient's local time.
# Federal TCPA, 47 CFR 64.1200(c)(1): 8 am-9 pm, the floor everywhere.
FEDERAL: Final = StateRule("federal", _daily(_h(8, 21)))
STATE_RULES: Final[Mapping[str, StateRule]] = {
    # Florida Telephone Solicitation Act, Fla. Stat. 501.059: 8 am-8 pm. "3 per 24 h on the same subject" is
    # widely cited by vendors but not in the statute text we checked; applied as cited, the stricter reading.
    "FL": StateRule("Florida", _daily(_h(8, 20)), texts_per_24h=3),
    # Oklahoma Telephone Solicitation Act (in force 2022-11-01): 8 am-8 pm, 3 per 24 h on the same subject;
    # an Oklahoma area code is presumed to be an Oklahoma resident.
    "OK": StateRule("Oklahoma", _daily(_h(8, 20)), texts_per_24h=3),
    # Maryland Stop the Spam Calls Act (in force 2024-01-01): 8 am-8 pm, 3 calls or texts per 24 h on one subject.
    "MD": StateRule("Maryland", _daily(_h(8, 20)), texts_per_24h=3),
    # Texas SB 140 (in force 2025-09-01): Monday-Saturday 9 am-9 pm, Sunday noon-9 pm.
    "TX": StateRule("Texas", {**dict.fromkeys(range(6), _h(9, 21)), 6: _h(12, 21)}),
}

@dataclass(frozen=True, slots=True)
class Location:
    """Where the rules place a recipient: every zone they may be in, every state whose rules apply."""

    time_zones: tuple[str, ...]
    states: frozenset[str]
    source: Literal["address", "area_code", "organisation"]


@dataclass(frozen=True, slots=True)
class OrgWindow:
    """The organisation's own limits, in the recipient's local time: they can only narrow the law's."""

    hours: Hours = Hours(0, 1440)
    days: frozenset[int] = EVERY_DAY
    holidays: frozenset[date] = field(default_factory=frozenset)


def resolve_location(e164: str, *, org_time_zone: str, address_state: str | None = None,
                     address_time_zone: str | None = None) -> Location:
    """The recipient's location: the address first, then the area code, then the organisation's zone.
    An ``address_state`` that is not a US state (:func:`libs.common.us_states.us_state`) is no address."""
    area_zones, area_state = _area_code(e164)
    state = us_state(address_state)
    states = {s for s in (state, area_state) if s}
    if address_time_zone and _known_zone(address_time_zone):
        return Location((address_time_zone,), frozenset(states), "address")
    if state is not None:
        return Location(STATE_ZONES[state], frozenset(states), "address")
    if area_zones:
        return Location(area_zones, frozenset(states), "area_code")
    return Location((org_time_zone,), frozenset(states), "organisation")


def _area_code(e164: str) -> tuple[tuple[str, ...], str | None]:
    """The zones and state (or province) of a geographic NANP number ((), None for a toll-free or foreign one)."""
    if not e164.startswith("+1") or len(e164) != 12 or e164[2:5] not in AREA_CODE_STATES:
        return (), None
    return _zones_of_prefix(e164[:8]), AREA_CODE_STATES[e164[2:5]] or None


@lru_cache(maxsize=4096)
def _zones_of_prefix(prefix: str) -> tuple[str, ...]:
    """Zones of +1, an area code and an exchange: what phonenumbers' time-zone data resolves."""
    try:
        number = phonenumbers.parse(prefix + "0100")
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in number_zones.time_zones_for_number(number) if _known_zone(z))


@lru_cache(maxsize=512)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _rules(states: Iterable[str]) -> list[StateRule]:
    return [FEDERAL, *(STATE_RULES[s] for s in sorted(states) if s in STATE_RULES)]


def _hours_on(local_day: date, states: frozenset[str], org: OrgWindow) -> Hours | None:
    """The local hours open on ``local_day`` under every rule, or None when the day is closed."""
    weekday = local_day.weekday()
    if weekday not in org.days or local_day in org.holidays:
        return None
    hours = org.hours
    for rule in _rules(states):
        day_hours = rule.hours.get(weekday)
        if day_hours is None:
            return None
        hours = hours.clip(day_hours)
    return hours if hours.start < hours.end else None


def _open_in_zone(zone: str, at: datetime, states: frozenset[str], org: OrgWindow) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    hours = _hours_on(local.date(), states, org)
    minute = local.hour * 60 + local.minute
    return hours is not None and hours.start <= minute < hours.end


def is_open(location: Location, at: datetime, org: OrgWindow | None = None) -> bool:
    """Whether ``location`` may be texted at the instant ``at`` (timezone-aware)."""
    window = org or OrgWindow()
    return all(_open_in_zone(zone, at, location.states, window) for zone in location.time_zones)


def next_open(location: Location, at: datetime, org: OrgWindow | None = None, *,
              horizon: timedelta = timedelta(days=15)) -> datetime | None:
    """The first instant at or after ``at`` when ``location`` may be texted; None if none within ``horizon``.

    The window is an intersection of daily intervals, so it opens at some zone's local opening time: those
    are the only candidates.
    """
    window = org or OrgWindow()
    if is_open(location, at, window):
        return at
    candidates = []
    for zone in location.time_zones:
        tz = ZoneInfo(zone)
        first_day = at.astimezone(tz).date()
        for offset in range(horizon.days + 1):
            day = first_day + timedelta(days=offset)
            hours = _hours_on(day, location.states, window)
            if hours is not None:
                opening = datetime(day.year, day.month, day.day, hours.start // 60, hours.start % 60, tzinfo=tz)
                candidates.append(opening.astimezone(UTC))
    for candidate in sorted(c for c in candidates if c > at and c <= at + horizon):
        if is_open(location, candidate, window):
            return candidate
    return None


def state_text_limit(location: Location) -> int | None:
    """The fewest texts per 24 h on one subject any applicable state allows (None: no state limit)."""
    limits = [r.texts_per_24h for r in _rules(location.states) if r.texts_per_24h is not None]
    return min(limits) if limits else None
