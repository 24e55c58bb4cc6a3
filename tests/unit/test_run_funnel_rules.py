"""The funnel's pure parts: each bar as a share of the recipients targeted, and a recipient's one-word outcome."""

from __future__ import annotations

import uuid

from services.api.funnel import Clicks, Exclusions, RunFunnel, outcome, steps


def _funnel(targeted: int, **figures: int) -> RunFunnel:
    exclusions = Exclusions(opted_out=0, duplicate=0, invalid_number=0, missing_mobile=0, landline=0, unreachable=0,
                            render_failed=0, quiet_hours=0, frequency_cap=0, over_limit=0, not_sent=0)
    values = {"excluded": 0, "in_progress": 0, "sent": 0, "delivered": 0, "failed": 0, "replied": 0,
              "opted_out_after": 0} | figures
    return RunFunnel(run_id=uuid.uuid4(), track_links=True, targeted=targeted, exclusions=exclusions, failures=[],
                     clicked=Clicks(people=figures.get("people", 0), people_clicks=0, bots=0, bot_clicks=0),
                     **{k: v for k, v in values.items() if k != "people"})


def test_each_bar_is_a_share_of_the_targeted_recipients() -> None:
    bars = steps(_funnel(8, excluded=1, sent=7, delivered=6, failed=1, people=3, replied=2, opted_out_after=1))
    assert [(b.key, b.count, b.percent) for b in bars] == [
        ("targeted", 8, 100.0), ("excluded", 1, 12.5), ("sent", 7, 87.5), ("delivered", 6, 75.0),
        ("failed", 1, 12.5), ("clicked", 3, 37.5), ("replied", 2, 25.0), ("opted_out", 1, 12.5)]


def test_a_run_nobody_was_targeted_by_draws_empty_bars() -> None:
    assert {b.percent for b in steps(_funnel(0))} == {0.0}


def test_the_outcome_is_the_exclusion_then_twilios_status_then_the_ledgers_state() -> None:
    assert outcome({"status": "excluded", "reason": "opted_out", "twilio_status": None, "state": None}) == (
        "excluded:opted_out")
    assert outcome({"status": "queued", "reason": None, "twilio_status": "delivered", "state": "sent"}) == "delivered"
    assert outcome({"status": "queued", "reason": None, "twilio_status": None, "state": "outside_window"}) == (
        "outside_window")
    assert outcome({"status": "queued", "reason": None, "twilio_status": None, "state": None}) == "queued"
