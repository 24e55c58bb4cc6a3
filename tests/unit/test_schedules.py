"""Schedules: DST changes in New York and London, month ends, "second Tuesday", validation, lateness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common import schedules
from libs.common.schedules import (
    InvalidSchedule,
    Recurring,
    SendAt,
    is_missed,
    next_occurrence,
    occurrences,
    recurring,
    resolve_local,
    send_at,
    zone,
)

NY, LONDON = "America/New_York", "Europe/London"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_times(schedule: Recurring, after: datetime, count: int) -> list[str]:
    return [t.astimezone(zone(schedule.time_zone)).strftime("%Y-%m-%d %H:%M %Z")
            for t in occurrences(schedule, after=after, count=count)]


# ---------------------------------------------------------------------------------------------
# One-time sends across DST


@pytest.mark.parametrize(
    ("local", "tz", "expected", "why"),
    [
        (datetime(2026, 3, 8, 2, 30), NY, utc(2026, 3, 8, 7, 0), "gap: the jump, 03:00 EDT"),
        (datetime(2026, 3, 8, 2, 0), NY, utc(2026, 3, 8, 7, 0), "gap start: 03:00 EDT"),
        (datetime(2026, 3, 8, 3, 0), NY, utc(2026, 3, 8, 7, 0), "03:00 EDT exists"),
        (datetime(2026, 3, 8, 1, 59), NY, utc(2026, 3, 8, 6, 59), "01:59 EST exists"),
        (datetime(2026, 11, 1, 1, 30), NY, utc(2026, 11, 1, 5, 30), "overlap: the first, 01:30 EDT"),
        (datetime(2026, 11, 1, 2, 0), NY, utc(2026, 11, 1, 7, 0), "after the overlap: EST"),
        (datetime(2026, 3, 29, 1, 30), LONDON, utc(2026, 3, 29, 1, 0), "gap: the jump, 02:00 BST"),
        (datetime(2026, 10, 25, 1, 30), LONDON, utc(2026, 10, 25, 0, 30), "overlap: the first, 01:30 BST"),
        (datetime(2026, 7, 1, 9, 0), LONDON, utc(2026, 7, 1, 8, 0), "summer: BST"),
        (datetime(2026, 4, 5, 1, 45), "Australia/Lord_Howe", utc(2026, 4, 4, 14, 45), "30-minute overlap: the first"),
    ],
)
def test_a_local_time_resolves_to_one_instant(local: datetime, tz: str, expected: datetime, why: str) -> None:
    assert resolve_local(local, zone(tz)) == expected, why
    assert occurrences(send_at(local, tz, now=NOW), after=NOW, count=5) == [expected]


@settings(max_examples=300, deadline=None)
@given(
    first=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)),
    step=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=6)),
    tz=st.sampled_from([NY, LONDON, "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]),
)
def test_resolution_never_goes_early_and_keeps_the_order(first: datetime, step: timedelta, tz: str) -> None:
    info = zone(tz)
    instant = resolve_local(first, info)
    wall = instant.astimezone(info).replace(tzinfo=None)
    assert wall >= first and wall - first <= timedelta(hours=1)  # exact, or the end of a gap
    assert resolve_local(first + step, info) >= instant


def test_an_aware_send_at_is_read_in_its_own_offset() -> None:
    schedule = send_at(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), LONDON, now=NOW)
    assert schedule == SendAt(at=datetime(2026, 6, 1, 10, 0), time_zone=LONDON)


# ---------------------------------------------------------------------------------------------
# Recurring sends across DST


def test_a_daily_0230_goes_out_once_on_spring_forward_day_at_0300() -> None:
    daily = recurring("FREQ=DAILY", datetime(2026, 3, 6, 2, 30), NY, now=NOW)
    assert local_times(daily, NOW, 4) == [
        "2026-03-06 02:30 EST", "2026-03-07 02:30 EST", "2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT",
    ]


def test_a_daily_0130_goes_out_once_on_fall_back_day() -> None:
    daily = recurring("FREQ=DAILY", datetime(2026, 10, 31, 1, 30), NY, now=NOW)
    assert occurrences(daily, after=NOW, count=3) == [
        utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30),
    ]


def test_an_hourly_rule_skips_the_repeated_hour_and_the_missing_one() -> None:
    fall = recurring("FREQ=HOURLY;COUNT=5", datetime(2026, 11, 1, 0, 0), NY, now=NOW)
    assert occurrences(fall, after=NOW, count=9) == [
        utc(2026, 11, 1, 4), utc(2026, 11, 1, 5), utc(2026, 11, 1, 7), utc(2026, 11, 1, 8), utc(2026, 11, 1, 9),
    ]
    spring = recurring("FREQ=HOURLY;COUNT=5", datetime(2026, 3, 8, 0, 0), NY, now=NOW)
    # 02:00 does not exist and goes out at 03:00 EDT, the same instant as 03:00 itself: once.
    assert occurrences(spring, after=NOW, count=9) == [
        utc(2026, 3, 8, 5), utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8),
    ]


def test_a_weekly_rule_in_london_across_both_changes() -> None:
    sundays = recurring("FREQ=WEEKLY;BYDAY=SU;UNTIL=20261101", datetime(2026, 3, 22, 1, 30), LONDON, now=NOW)
    times = local_times(sundays, NOW, 40)
    assert times[:3] == ["2026-03-22 01:30 GMT", "2026-03-29 02:00 BST", "2026-04-05 01:30 BST"]
    assert "2026-10-25 01:30 BST" in times and times[-1] == "2026-11-01 01:30 GMT"
    assert len(times) == len(set(times)) == 33


def test_occurrences_count_from_now_and_in_utc() -> None:
    daily = recurring("FREQ=DAILY", datetime(2026, 1, 1, 9, 0), NY, now=NOW)
    found = occurrences(daily, after=NOW, count=5)
    assert found[0] == utc(2026, 1, 15, 14) and len(found) == 5  # 09:00 EST today is still ahead
    assert all(t.tzinfo is UTC for t in found)
    assert next_occurrence(daily, after=utc(2026, 1, 16, 14)) == utc(2026, 1, 17, 14)
    assert next_occurrence(daily, after=utc(2026, 1, 16, 14), inclusive=True) == utc(2026, 1, 16, 14)


# ---------------------------------------------------------------------------------------------
# Month ends and "second Tuesday"


def test_the_31st_only_in_months_that_have_one() -> None:
    monthly = recurring("FREQ=MONTHLY;BYMONTHDAY=31", datetime(2026, 1, 31, 10, 0), LONDON, now=NOW)
    months = [t.month for t in occurrences(monthly, after=NOW, count=7)]
    assert months == [1, 3, 5, 7, 8, 10, 12]


def test_the_last_day_of_the_month_including_leap_february() -> None:
    last = recurring("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2027, 12, 1, 10, 0), LONDON, now=NOW)
    days = [t.date().isoformat() for t in occurrences(last, after=NOW, count=4)]
    assert days == ["2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31"]


def test_the_29th_skips_february_outside_leap_years() -> None:
    rule = recurring("FREQ=MONTHLY;BYMONTHDAY=29;COUNT=3", datetime(2027, 1, 1, 10, 0), NY, now=NOW)
    assert [t.date().isoformat() for t in occurrences(rule, after=NOW, count=5)] == [
        "2027-01-29", "2027-03-29", "2027-04-29",
    ]


@pytest.mark.parametrize("rule", ["FREQ=MONTHLY;BYDAY=2TU", "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2"])
def test_the_second_tuesday_of_each_month(rule: str) -> None:
    second = recurring(rule, datetime(2026, 1, 1, 18, 0), NY, now=NOW)
    assert [t.astimezone(zone(NY)).date().isoformat() for t in occurrences(second, after=NOW, count=4)] == [
        "2026-02-10", "2026-03-10", "2026-04-14", "2026-05-12",
    ]


def test_the_last_friday_and_weekly_on_chosen_days() -> None:
    last_friday = recurring("FREQ=MONTHLY;BYDAY=-1FR;COUNT=2", datetime(2026, 2, 1, 9, 0), NY, now=NOW)
    assert [t.day for t in occurrences(last_friday, after=NOW, count=5)] == [27, 27]
    mwf = recurring("rrule:freq=weekly;byday=mo,we,fr", datetime(2026, 2, 2, 9, 0), NY, now=NOW)
    assert mwf.rrule == "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    assert [t.strftime("%a") for t in occurrences(mwf, after=NOW, count=4)] == ["Mon", "Wed", "Fri", "Mon"]


def test_until_a_date_includes_that_day_and_until_utc_is_read_in_the_zone() -> None:
    by_date = recurring("FREQ=DAILY;UNTIL=20260203", datetime(2026, 2, 1, 18, 0), NY, now=NOW)
    assert by_date.rrule == "FREQ=DAILY;UNTIL=20260203T235959"
    assert len(occurrences(by_date, after=NOW, count=10)) == 3
    by_instant = recurring("FREQ=DAILY;UNTIL=20260203T230000Z", datetime(2026, 2, 1, 18, 0), NY, now=NOW)
    assert by_instant.rrule == "FREQ=DAILY;UNTIL=20260203T180000"
    assert len(occurrences(by_instant, after=NOW, count=10)) == 3


# ---------------------------------------------------------------------------------------------
# Validation: the field is named


@pytest.mark.parametrize(
    ("make", "field", "code"),
    [
        (lambda: send_at(datetime(2026, 1, 15, 6, 59), NY, now=NOW), "at", "schedule_in_past"),
        (lambda: send_at(datetime(2032, 1, 15, 7, 0), NY, now=NOW), "at", "schedule_too_far"),
        (lambda: send_at(datetime(2026, 5, 1, 9, 0), "Mars/Olympus", now=NOW), "time_zone", "time_zone_unknown"),
        (lambda: send_at(datetime(2026, 5, 1, 9, 0), "../etc/passwd", now=NOW), "time_zone", "time_zone_unknown"),
        (lambda: recurring("FREQ=DAILY", datetime(2026, 5, 1), "Nowhere", now=NOW), "time_zone", "time_zone_unknown"),
        (lambda: recurring("FREQ=DAILY;UNTIL=20251231", datetime(2025, 1, 1), NY, now=NOW), "rrule",
         "rrule_never_fires"),
        (lambda: recurring("FREQ=DAILY;COUNT=3", datetime(2026, 1, 1, 9), NY, now=NOW), "rrule", "rrule_never_fires"),
        (lambda: recurring("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 1), NY, now=NOW), "rrule",
         "rrule_never_fires"),
        (lambda: recurring("FREQ=DAILY", datetime(2032, 1, 1), NY, now=NOW), "rrule", "rrule_never_fires"),
        (lambda: recurring("FREQ=MINUTELY", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_too_frequent"),
        (lambda: recurring("FREQ=SECONDLY;COUNT=2", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_too_frequent"),
        (lambda: recurring("FREQ=HOURLY;BYMINUTE=0,30", datetime(2026, 5, 1), NY, now=NOW), "rrule",
         "rrule_too_frequent"),
        (lambda: recurring("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0,30", datetime(2026, 5, 1), NY, now=NOW),
         "rrule", "rrule_too_frequent"),
        (lambda: recurring("every tuesday", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
        (lambda: recurring("", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
        (lambda: recurring("BYDAY=TU", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
        (lambda: recurring("FREQ=DAILY;INTERVAL=0", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
        (lambda: recurring("FREQ=DAILY;COUNT=2;UNTIL=20270101", datetime(2026, 5, 1), NY, now=NOW), "rrule",
         "rrule_invalid"),
        (lambda: recurring("FREQ=DAILY;BYDAY=XX", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
        (lambda: recurring("DTSTART:20260501T090000\nRRULE:FREQ=DAILY", datetime(2026, 5, 1), NY, now=NOW),
         "rrule", "rrule_invalid"),
        (lambda: recurring("FREQ=DAILY;DTSTART=20260501T090000", datetime(2026, 5, 1), NY, now=NOW), "rrule",
         "rrule_invalid"),
        (lambda: recurring("FREQ=DAILY;BYEASTER=0", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
        (lambda: recurring("FREQ=DAILY;UNTIL=tomorrow", datetime(2026, 5, 1), NY, now=NOW), "rrule", "rrule_invalid"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(make: object, field: str, code: str) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        make()  # type: ignore[operator]
    assert (refused.value.field, refused.value.code) == (field, code)
    assert str(refused.value).startswith(f"{field}: ")


def test_a_past_time_is_explained_in_local_time() -> None:
    with pytest.raises(InvalidSchedule, match="at: 2026-01-15 06:59 in America/New_York is in the past"):
        send_at(datetime(2026, 1, 15, 6, 59), NY, now=NOW)


@pytest.mark.parametrize("freq", ["DAILY", "HOURLY", "WEEKLY", "MONTHLY"])
def test_a_rule_that_never_fires_is_refused_within_the_horizon(freq: str) -> None:
    # The search stops at HORIZON (five years); unbounded, dateutil would scan to the year 9999.
    with pytest.raises(InvalidSchedule, match="no occurrence after now within five years"):
        recurring(f"FREQ={freq};BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 1), NY, now=NOW)


# ---------------------------------------------------------------------------------------------
# Storage and lateness


@pytest.mark.parametrize(
    "schedule",
    [
        None,
        schedules.send_now(NOW),
        SendAt(at=datetime(2026, 3, 8, 2, 30), time_zone=NY),
        Recurring(rrule="FREQ=MONTHLY;BYDAY=2TU", start=datetime(2026, 1, 1, 18, 0), time_zone=NY),
    ],
)
def test_schedules_round_trip_through_json(schedule: schedules.Schedule | None) -> None:
    assert schedules.from_json(schedules.to_json(schedule)) == schedule


@pytest.mark.parametrize(
    "stored",
    [{}, {"kind": "weekly"}, {"kind": "at", "at": "soon", "time_zone": NY}, {"kind": "at", "at": "2026-01-01"},
     {"kind": "rrule", "rrule": "FREQ=NEVER", "start": "2026-01-01T00:00:00", "time_zone": NY}],
)
def test_a_malformed_stored_schedule_is_refused(stored: dict[str, str]) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        schedules.from_json(stored)
    assert refused.value.code in ("schedule_invalid", "time_zone_unknown", "rrule_invalid")


@pytest.mark.parametrize(
    ("late", "send_when_late", "missed"),
    [(timedelta(0), False, False), (timedelta(minutes=59), False, False), (timedelta(hours=1), False, False),
     (timedelta(hours=1, seconds=1), False, True), (timedelta(days=3), True, False)],
)
def test_lateness_policy(late: timedelta, send_when_late: bool, missed: bool) -> None:
    occurrence = utc(2026, 3, 1, 9)
    assert is_missed(occurrence, occurrence + late, max_lateness=timedelta(hours=1),
                     send_when_late=send_when_late) is missed
