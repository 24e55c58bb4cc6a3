"""The send planner: the plan said before launch, against hand-computed windows and rates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from libs.common.quiet_hours import OrgWindow
from libs.common.send_plan import PlannedRecipient, plan_sending
from libs.common.send_verdict import RunRules

START = datetime(2026, 12, 3, 2, 30, tzinfo=UTC)  # Wednesday 9:30 pm Eastern, 8:30 pm Central, 6:30 pm Pacific
SENDER = "+18885550101"


def rules(hold: timedelta = timedelta(hours=24), cap: tuple[int, int] | None = None) -> RunRules:
    return RunRules("America/New_York", OrgWindow(), cap, False, uuid.uuid4(), START + hold)


def members(prefix: str, count: int, *, marketing_sent: int = 0) -> list[PlannedRecipient]:
    return [PlannedRecipient(f"{prefix}{i:04d}", SENDER, 1, marketing_sent=marketing_sent) for i in range(count)]


def test_3040_oklahomans_are_held_until_8_am_central_tomorrow_and_californians_sent_now() -> None:
    plan = plan_sending(members("+1405555", 3040) + members("+1213555", 30), rules(), START, {SENDER: 3.0})
    assert plan.sendable_now == 30
    assert [(g.until, g.time_zone, g.count) for g in plan.held] == [
        (datetime(2026, 12, 3, 14, 0, tzinfo=UTC), "America/Chicago", 3040)]
    assert plan.sentences == ("3,040 members will be held until 8 am Central tomorrow.",)
    # 30 texts from 6:30 pm Pacific, then 3,040 from 8 am Central at 3 a second: 1,013.33 s after 14:00 UTC.
    assert plan.finishes_at == datetime(2026, 12, 3, 14, 0, tzinfo=UTC) + timedelta(seconds=3040 / 3)


def test_a_short_hold_limit_and_caps_are_counted_apart() -> None:
    plan = plan_sending(members("+1405555", 5) + members("+1213555", 4, marketing_sent=3) + members("+1213556", 2),
                        rules(hold=timedelta(hours=6), cap=(3, 7)), START, {SENDER: 1.0})
    assert (plan.sendable_now, plan.held, plan.outside_window, plan.frequency_capped) == (2, (), 5, 4)
    assert plan.finishes_at == START + timedelta(seconds=2)
    assert plan.sentences == (
        "5 members cannot be texted before the campaign's hold limit (their local window does not open in time).",
        "4 members over a frequency cap will not be texted.")


def test_a_queue_that_runs_past_9_pm_waits_for_the_morning() -> None:
    # 8:59:58 pm Pacific, 1 segment a second: two are sent before 9 pm, the third at 8 am Pacific.
    late = datetime(2026, 12, 3, 4, 59, 58, tzinfo=UTC)
    plan = plan_sending(members("+1213555", 3), RunRules("America/New_York", OrgWindow(), None, False, uuid.uuid4(),
                                                         late + timedelta(hours=24)), late, {SENDER: 1.0})
    assert plan.sendable_now == 3
    assert plan.finishes_at == datetime(2026, 12, 3, 16, 0, 1, tzinfo=UTC)


def test_nobody_sendable_has_no_finish() -> None:
    plan = plan_sending(members("+1213555", 2, marketing_sent=5), rules(cap=(3, 7)), START, {})
    assert plan.finishes_at is None and plan.frequency_capped == 2


def test_alaska_is_named_by_the_zone_that_opens_last_and_sunday_in_texas_at_noon() -> None:
    saturday_night = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)  # Saturday 10 pm Central, 7 pm Alaska
    plan = plan_sending(members("+1214555", 2) + members("+1907555", 1),
                        RunRules("America/New_York", OrgWindow(), None, False, uuid.uuid4(),
                                 saturday_night + timedelta(days=2)), saturday_night, {})
    assert plan.sendable_now == 1  # Anchorage 7 pm, Adak 6 pm: open
    assert plan.sentences == ("2 members will be held until noon Central tomorrow.",)
