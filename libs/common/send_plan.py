"""The send planner: before launch, who is sent now, who is held until when, who is not sent, and when it ends. Pure.

Each recipient gets the dispatcher's own verdict (:func:`libs.common.send_verdict.decide`) at the planned
start, so the plan says what the dispatcher will do: "3,040 members will be held until 8 am Central
tomorrow" is said before launch. The finish time plays each sender's queue at its segments per second:
a recipient is sent at its turn or when its window opens, whichever is later, and one whose window closes
before its turn waits for the next opening.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from libs.common.quiet_hours import Location, is_open, next_open, resolve_location
from libs.common.send_verdict import RunRules, decide

__all__ = ["HeldGroup", "PlannedRecipient", "SendPlan", "plan_sending"]

# What people call the US zones; another zone is named by its city.
ZONE_NAMES: Mapping[str, str] = {
    "America/New_York": "Eastern", "America/Detroit": "Eastern", "America/Indiana/Indianapolis": "Eastern",
    "America/Chicago": "Central", "America/Denver": "Mountain", "America/Phoenix": "Mountain (Arizona)",
    "America/Boise": "Mountain", "America/Los_Angeles": "Pacific", "America/Anchorage": "Alaska",
    "America/Juneau": "Alaska", "America/Adak": "Hawaii-Aleutian", "Pacific/Honolulu": "Hawaii",
}


@dataclass(frozen=True, slots=True)
class PlannedRecipient:
    """One recipient as the snapshot would hold it, with the ledger's counts against its caps."""

    e164: str
    sender: str
    segments: int
    address_state: str | None = None
    address_time_zone: str | None = None
    marketing_sent: int = 0
    subject_sent: int = 0


@dataclass(frozen=True, slots=True)
class HeldGroup:
    """Recipients held until the same instant, named in the zone whose window opens then."""

    until: datetime
    time_zone: str
    count: int
    words: str


@dataclass(frozen=True, slots=True)
class SendPlan:
    sendable_now: int
    held: tuple[HeldGroup, ...]
    outside_window: int
    frequency_capped: int
    finishes_at: datetime | None  # None: nobody will be sent
    sentences: tuple[str, ...]


def plan_sending(recipients: Iterable[PlannedRecipient], rules: RunRules, start: datetime,
                 segments_per_second: Mapping[str, float]) -> SendPlan:
    """The plan of a run starting at ``start`` (aware), each sender at its rate (3 segments/s by default)."""
    kinds: Counter[str] = Counter()
    held: Counter[tuple[datetime, str]] = Counter()
    queues: dict[str, list[tuple[datetime, int, int, Location]]] = {}
    for index, r in enumerate(recipients):
        verdict = decide(rules, start, e164=r.e164, address_state=r.address_state,
                         address_time_zone=r.address_time_zone, marketing_sent=r.marketing_sent,
                         subject_sent=r.subject_sent)
        kinds[verdict.kind] += 1
        if verdict.kind not in ("send", "hold"):
            continue
        location = resolve_location(r.e164, org_time_zone=rules.org_time_zone, address_state=r.address_state,
                                    address_time_zone=r.address_time_zone)
        available = start
        if verdict.kind == "hold":
            assert verdict.until is not None
            available = verdict.until
            held[(verdict.until, _opening_zone(location, verdict.until))] += 1
        queues.setdefault(r.sender, []).append((available, index, r.segments, location))
    finishes = [_finish(queue, rules, segments_per_second.get(sender, 3.0)) for sender, queue in queues.items()]
    ends = [f for f in finishes if f is not None]
    groups = tuple(HeldGroup(until, zone, count, _held_words(count, until, zone, start))
                   for (until, zone), count in sorted(held.items()))
    sentences = [g.words for g in groups]
    if kinds["outside_window"]:
        sentences.append(f"{_members(kinds['outside_window'])} cannot be texted before the campaign's hold limit "
                         "(their local window does not open in time).")
    if kinds["frequency_capped"]:
        sentences.append(f"{_members(kinds['frequency_capped'])} over a frequency cap will not be texted.")
    return SendPlan(kinds["send"], groups, kinds["outside_window"], kinds["frequency_capped"],
                    max(ends) if ends else None, tuple(sentences))


def _finish(queue: list[tuple[datetime, int, int, Location]], rules: RunRules, rate: float) -> datetime | None:
    """When one sender's last recipient is sent: its queue played at ``rate`` through the windows."""
    heapq.heapify(queue)
    busy_s = 0.0  # seconds of sending since the sender was last idle, kept apart to add no rounding per text
    idle_at: datetime | None = None
    while queue:
        available, index, segments, location = heapq.heappop(queue)
        free = idle_at + timedelta(seconds=busy_s) if idle_at is not None else available
        if available > free:
            idle_at, busy_s, free = available, 0.0, available
        if not is_open(location, free, rules.window):
            opens = next_open(location, free, rules.window)
            if opens is not None and opens <= rules.hold_ends:
                heapq.heappush(queue, (opens, index, segments, location))
            continue  # a recipient that cannot be sent in time ends outside_window and takes no time
        if idle_at is None:
            idle_at = free
        busy_s += segments / rate
    return idle_at + timedelta(seconds=busy_s) if idle_at is not None else None


def _opening_zone(location: Location, until: datetime) -> str:
    """The zone whose window opens at ``until``: of several, the one where it is earliest in the day."""
    def local_minutes(zone: str) -> int:
        local = until.astimezone(ZoneInfo(zone))
        return local.hour * 60 + local.minute
    return min(location.time_zones, key=local_minutes)


def _held_words(count: int, until: datetime, zone: str, start: datetime) -> str:
    tz = ZoneInfo(zone)
    local, started = until.astimezone(tz), start.astimezone(tz)
    days = (local.date() - started.date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local:%A} {local.day} {local:%B}")
    return f"{_members(count)} will be held until {_clock(local)} {ZONE_NAMES.get(zone, zone.split('/')[-1])} {day}."


def _clock(local: datetime) -> str:
    if (local.hour, local.minute) == (12, 0):
        return "noon"
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes} {'am' if local.hour < 12 else 'pm'}"


def _members(count: int) -> str:
    return "1 member" if count == 1 else f"{count:,} members"
