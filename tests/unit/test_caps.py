from datetime import UTC, datetime

from libs.common.sender_caps import CapPolicy, first_cap_reached, next_period_start, period_start

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # a Thursday


def test_periods_are_utc_calendar_day_iso_week_and_month() -> None:
    assert period_start("day", NOW) == datetime(2026, 11, 26, tzinfo=UTC)
    assert period_start("week", NOW) == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_start("month", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert next_period_start("day", NOW) == datetime(2026, 11, 27, tzinfo=UTC)
    assert next_period_start("week", NOW) == datetime(2026, 11, 30, tzinfo=UTC)
    assert next_period_start("month", datetime(2026, 12, 31, 23, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_2023_pending_caps_are_checked_longest_period_first() -> None:
    limits = CapPolicy(per_day=2000, per_week=6000, per_month=10000, when_reached="hold").limits()
    assert first_cap_reached({"day": 1999, "week": 5000, "month": 9000}, limits, 1) is None
    assert first_cap_reached({"day": 1999, "week": 5000, "month": 9000}, limits, 2) == "day"
    assert first_cap_reached({"day": 2000, "week": 6000, "month": 10000}, limits, 1) == "month"
    assert first_cap_reached({}, CapPolicy(None, None, 5, "fail").limits(), 6) == "month"
