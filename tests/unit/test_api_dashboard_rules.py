"""The dashboard's pure parts: sending progress, the usage chart, schedules in words, credentials."""

from __future__ import annotations

import doctest
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.api import auth, pages, progress, schedule_text, usage_chart
from services.api.progress import measure

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize("module", [progress, schedule_text])
def test_the_docstring_examples_hold(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


def test_progress_measures_since_the_start_when_it_is_younger_than_the_window() -> None:
    young = measure(total=100, done=30, recent=30, window_s=60, started_at=NOW - timedelta(seconds=10), now=NOW)
    assert young.per_minute == 180 and young.expected_finish == NOW + timedelta(seconds=70 / 3)
    stalled = measure(total=100, done=30, recent=0, window_s=60, started_at=NOW - timedelta(hours=1), now=NOW)
    assert stalled.per_minute == 0 and stalled.expected_finish is None
    finished = measure(total=100, done=100, recent=5, window_s=60, started_at=None, now=NOW)
    assert finished.percent == 100 and finished.expected_finish is None
    resolving = measure(total=0, done=0, recent=0, window_s=60, started_at=None, now=NOW)
    assert resolving.percent == 0 and resolving.expected_finish is None
    assert measure(total=1000, done=999, recent=1, window_s=60, started_at=None, now=NOW).percent == 99


def test_the_rate_never_reads_above_the_senders_pace() -> None:
    # 218 outcomes counted in a minute (sends on the window's edge, or earlier sends counted twice):
    # a sender paced at 3 segments a second cannot have sent more than 180 messages in it.
    over = measure(total=1000, done=500, recent=218, window_s=60, started_at=NOW - timedelta(minutes=5), now=NOW,
                   segments_per_second=3)
    assert over.per_minute == 180
    assert over.expected_finish == NOW + timedelta(seconds=500 / 3)
    young = measure(total=100, done=4, recent=4, window_s=60, started_at=NOW - timedelta(seconds=1), now=NOW,
                    segments_per_second=3)
    assert young.per_minute == 180
    under = measure(total=1000, done=500, recent=90, window_s=60, started_at=None, now=NOW, segments_per_second=3)
    assert under.per_minute == 90


def test_the_series_has_every_day_and_the_totals_add_up() -> None:
    rows = [{"day": date(2026, 3, 10), "segments": 40, "messages": 20, "failed": 2, "cost": Decimal("0.332")},
            {"day": date(2026, 3, 1), "segments": 10, "messages": 10, "failed": 0, "cost": Decimal("0.083")},
            {"day": date(2026, 1, 1), "segments": 99, "messages": 99, "failed": 9, "cost": Decimal("1")}]
    series = usage_chart.daily_series(rows, last=date(2026, 3, 10), days=30)
    assert len(series) == 30 and series[0].day == date(2026, 2, 9) and series[-1].segments == 40
    month = usage_chart.totals(series, since=date(2026, 3, 1))
    assert (month.segments, month.failed, month.cost) == (50, 2, Decimal("0.415"))


def test_the_chart_data_has_one_entry_per_day_labelled_in_the_organisations_calendar() -> None:
    series = usage_chart.daily_series(
        [{"day": date(2026, 3, 10), "segments": 3020, "messages": 1510, "failed": 3, "cost": Decimal("25.0685")}],
        last=date(2026, 3, 10))
    data = usage_chart.chart_data(series)
    assert {len(v) for v in data.values()} == {30}
    assert (data["labels"][0], data["labels"][-1], data["titles"][-1]) == ("9 Feb", "10 Mar", "Tue 10 Mar")
    today = [data[k][-1] for k in ("segments", "messages", "failed", "cost")]
    assert today == [3020, 1510, 3, "25.07"]
    assert (data["segments"][0], data["cost"][0]) == (0, "0.00")


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR", "Weekly on Monday, Wednesday and Friday at 09:00"),
        ("FREQ=DAILY;INTERVAL=2;COUNT=5", "Every 2 days at 09:00, 5 times"),
        ("FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20261231T235959", "Monthly on the last Friday at 09:00, until 31 Dec 2026"),
        ("FREQ=MONTHLY", "Monthly on day 3 at 09:00"),
        ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3", "Repeats (FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3)"),
    ],
)
def test_rules_are_put_in_words_or_shown_as_they_are(rule: str, words: str) -> None:
    assert schedule_text.describe_rrule(rule, datetime(2026, 3, 3, 9, 0)) == words


def test_where_to_go_after_signing_in_is_always_this_site() -> None:
    for target in (None, "", "https://evil.example", "//evil.example", "/\\evil.example", "/ok\nSet-Cookie: x"):
        assert auth.safe_next(target) == "/"
    assert auth.safe_next("/campaigns?tab=draft") == "/campaigns?tab=draft"


def test_passwords_and_tokens() -> None:
    hashed = auth.hash_password("correct horse battery staple")
    assert auth.check_password(hashed, "correct horse battery staple").ok
    assert not auth.check_password(hashed, "Correct horse battery staple").ok
    assert not auth.check_password(None, "anything").ok
    assert auth.password_problem("short") and auth.password_problem(" " * 20) and not auth.password_problem("x" * 12)
    key = auth.new_api_key()
    assert key.key.startswith("tpk_") and key.key_hash == auth.token_hash(key.key) and key.key[4:12] == key.prefix
    assert auth.same_token("abc", "abc") and not auth.same_token("abc", "abd") and not auth.same_token(None, None)
    assert auth.cookie_name(True).startswith("__Host-") and not auth.cookie_name(False).startswith("__Host-")


def test_every_page_writes_dates_one_way() -> None:
    env = pages.ENV
    moment = datetime(2026, 9, 2, 13, 5, tzinfo=UTC)
    assert env.filters["local"](moment, "Europe/London") == "2 Sep 2026, 14:05"
    assert env.filters["local"](None, "Europe/London") == "–"
    assert env.filters["day"](date(2026, 12, 2)) == "2 Dec 2026"
