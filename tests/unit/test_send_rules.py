"""The dispatcher's verdict per recipient: hold, outside_window, frequency_capped or send (pure part)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from libs.common.quiet_hours import OrgWindow
from libs.common.send_verdict import RunRules, decide

RUN_START = datetime(2026, 12, 3, 1, 30, tzinfo=UTC)  # 8:30 pm Eastern, 5:30 pm Pacific


def rules(*, cap: tuple[int, int] | None = None, transactional: bool = False,
          hold: timedelta = timedelta(hours=24)) -> RunRules:
    return RunRules("America/New_York", OrgWindow(), cap, transactional, uuid.uuid4(), RUN_START + hold)


def verdict(e164: str, run_rules: RunRules | None = None, *, marketing: int = 0, subject: int = 0,
            at: datetime = RUN_START, **address: str) -> tuple[str, datetime | None]:
    v = decide(run_rules or rules(), at, e164=e164, address_state=address.get("state"),
               address_time_zone=address.get("zone"), marketing_sent=marketing, subject_sent=subject)
    return v.kind, v.until


def test_at_8_30_pm_eastern_pacific_is_sent_and_florida_held_until_8_am() -> None:
    assert verdict("+13055550100", at=RUN_START - timedelta(hours=1)) == ("send", None)  # 7:30 pm: still open
    assert verdict("+12135550100") == ("send", None)
    assert verdict("+13055550100") == ("hold", datetime(2026, 12, 3, 13, 0, tzinfo=UTC))
    assert verdict("+12125550100") == ("send", None)  # New York: federal 9 pm


def test_a_hold_past_the_campaigns_limit_is_outside_window() -> None:
    assert verdict("+13055550100", rules(hold=timedelta(hours=6))) == ("outside_window", None)


def test_the_state_limit_applies_to_every_campaign_and_the_marketing_cap_to_marketing_only() -> None:
    okc = "+14055550100"
    morning = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # 10 am Central
    assert verdict(okc, subject=2, at=morning) == ("send", None)
    assert verdict(okc, subject=3, at=morning) == ("frequency_capped", None)
    assert verdict(okc, rules(transactional=True), subject=3, at=morning) == ("frequency_capped", None)
    capped = rules(cap=(3, 7))
    assert verdict("+12135550100", capped, marketing=2) == ("send", None)
    assert verdict("+12135550100", capped, marketing=3) == ("frequency_capped", None)
    assert verdict("+12135550100", rules(cap=(3, 7), transactional=True), marketing=9) == ("send", None)


def test_transactional_texts_still_keep_quiet_hours() -> None:
    assert verdict("+13055550100", rules(transactional=True))[0] == "hold"


def test_the_address_decides_the_zone() -> None:
    # A Florida number whose member lives in Los Angeles: 5:30 pm there, but Florida's 8 pm rule still applies.
    assert verdict("+13055550100", state="CA", zone="America/Los_Angeles") == ("send", None)
    late = datetime(2026, 12, 3, 4, 30, tzinfo=UTC)  # 8:30 pm Pacific
    assert verdict("+13055550100", at=late, state="CA", zone="America/Los_Angeles")[0] == "hold"
