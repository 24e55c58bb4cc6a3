"""What a message costs and counts for (docs/twilio.md#pricing), and when usage or a run's state calls for an alert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.common import run_reasons
from libs.common.alert_templates import AlertKind
from libs.common.run_reasons import RunReason
from services.usage.conditions import OptedOutRule, classify_run, usage_threshold
from services.usage.rules import (
    Contribution,
    MessageFacts,
    apply_status,
    contribution,
    difference,
    failed_fee,
    pumping_charge,
)

US = Decimal("0.0083")
FEE = Decimal("0.001")


def sent(segments: int = 2, *, region: str = "US", unit_price: Decimal | None = US, status: str | None = None,
         code: int | None = None, price: Decimal | None = None) -> MessageFacts:
    """An accepted message, after ``status`` (with ``code`` and ``price``) if given."""
    facts = MessageFacts(outcome="sent", segments=segments, region=region, unit_price=unit_price)
    return apply_status(facts, status, code, price) if status else facts


# ---------------------------------------------------------------------------------------------
# Charging


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        # Accepted, no final status yet: counted as charged (the estimate shown today).
        (sent(), dict(messages=1, segments=2, segment_cost=Decimal("0.0166"))),
        (sent(status="delivered"), dict(messages=1, segments=2, delivered=1, segment_cost=Decimal("0.0166"))),
        # Undelivered: delivery was attempted, so charged; never the failed-message fee.
        (sent(status="undelivered", code=30003),
         dict(messages=1, segments=2, undelivered=1, segment_cost=Decimal("0.0166"), error_code=30003)),
        # Failed: no segment charge, the $0.001 fee once per message (not per segment).
        (sent(3, status="failed", code=30007),
         dict(messages=1, segments=3, failed=1, failed_fee=FEE, error_code=30007)),
        # Failed because the member had replied STOP: the fee applies, and it counts as opted-out.
        (sent(1, status="failed", code=21610),
         dict(messages=1, segments=1, failed=1, failed_fee=FEE, opted_out_failures=1, error_code=21610)),
        (sent(1, status="failed"), dict(messages=1, segments=1, failed=1, failed_fee=FEE, error_code=0)),
        (sent(1, status="canceled"), dict(messages=1, segments=1)),
        # Refused at submission (an API error): a failure, never charged.
        (MessageFacts("failed", 0, "US", US, error_code=21211), dict(failed=1, error_code=21211)),
        (MessageFacts("suppressed", 0, "US", US, error_code=21610),
         dict(failed=1, opted_out_failures=1, error_code=21610)),
        (MessageFacts("suppressed", 0, "US", US), dict(dropped=1)),
        (MessageFacts("expired", 0, "US", US), dict(dropped=1)),
        (MessageFacts("cancelled", 0, "US", US), dict(dropped=1)),
        # A destination without a price is counted apart, never guessed.
        (sent(2, region="BR", unit_price=None), dict(messages=1, segments=2, unpriced_segments=2)),
        # Twilio's price settles the message: the estimate it replaces and the price are carried apart.
        (sent(2, region="GB", unit_price=Decimal("0.0524"), status="delivered", price=Decimal("0.1048")),
         dict(messages=1, segments=2, delivered=1, segment_cost=Decimal("0.1048"), reported_cost=Decimal("0.1048"),
              settled_messages=1, settled_estimate=Decimal("0.1048"), settled_price=Decimal("0.1048"))),
        (sent(1, status="delivered", price=Decimal("0.0079")),
         dict(messages=1, segments=1, delivered=1, segment_cost=US, reported_cost=Decimal("0.0079"),
              settled_messages=1, settled_estimate=US, settled_price=Decimal("0.0079"))),
        (sent(1, status="failed", code=30007, price=FEE),
         dict(messages=1, segments=1, failed=1, failed_fee=FEE, error_code=30007, reported_cost=FEE,
              settled_messages=1, settled_estimate=FEE, settled_price=FEE)),
    ],
)
def test_what_a_message_contributes(facts: MessageFacts, expected: dict[str, object]) -> None:
    assert contribution(facts) == Contribution(**expected)


@pytest.mark.parametrize("code", [30450, 30036, 30002, 30008, 21408, 30454, 12400, 20500, 20504, 30103, 30500])
def test_exempt_codes_pay_no_failed_message_fee(code: int) -> None:
    assert failed_fee("failed", code) == 0
    assert contribution(sent(status="failed", code=code)).failed_fee == 0


@pytest.mark.parametrize("code", [30001, 30003, 30005, 30007, 30032, 21610, None])
def test_other_failures_pay_it_once_and_undelivered_never(code: int | None) -> None:
    assert failed_fee("failed", code) == FEE
    assert failed_fee("undelivered", code) == 0
    assert contribution(sent(10, status="failed", code=code)).failed_fee == FEE


def test_pumping_protection_counts_only_what_twilio_reported_outside_us_and_canada() -> None:
    assert pumping_charge("US", Decimal("0.025")) == 0
    assert pumping_charge("CA", Decimal("0.025")) == 0
    assert pumping_charge("GB", Decimal("0.025")) == Decimal("0.025")
    assert pumping_charge("GB", None) == 0
    gb = MessageFacts("sent", 1, "GB", Decimal("0.0524"), pumping_fee=Decimal("0.025"))
    assert contribution(gb).pumping_fee == Decimal("0.025")


def test_money_stays_exact() -> None:
    total = sum((contribution(sent(1)).segment_cost for _ in range(1000)), Decimal(0))
    assert total == Decimal("8.3000") and isinstance(total, Decimal)


# ---------------------------------------------------------------------------------------------
# Statuses out of order, and deltas


def test_a_status_applies_only_when_it_ranks_higher_and_the_first_final_one_stays() -> None:
    delivered = sent(status="delivered")
    assert apply_status(delivered, "sent", None, None) == delivered
    assert apply_status(delivered, "failed", 30007, None) == delivered
    assert apply_status(delivered, "no_such_status", None, None) == delivered
    assert apply_status(sent(status="queued"), "delivered", None, None).status == "delivered"


def test_a_price_reported_later_is_kept_even_without_a_new_status() -> None:
    delivered = sent(status="delivered")
    priced = apply_status(delivered, "delivered", None, Decimal("0.0158"))
    assert priced.reported_price == Decimal("0.0158")
    assert apply_status(priced, "delivered", None, Decimal("0.9")).reported_price == Decimal("0.0158")


def test_statuses_of_a_message_twilio_never_accepted_change_nothing() -> None:
    refused = MessageFacts("failed", 0, "US", US, error_code=21211)
    assert apply_status(refused, "delivered", None, None) == refused


def test_the_same_event_twice_makes_an_empty_delta() -> None:
    facts = sent(status="delivered")
    again = apply_status(facts, "delivered", None, None)
    assert not difference(contribution(again), contribution(facts))


def test_a_late_failure_takes_back_the_segment_cost_and_adds_the_fee() -> None:
    before, after = sent(2), sent(2, status="failed", code=30007)
    delta = difference(contribution(after), contribution(before))
    assert delta.counts == {"failed": 1, "segment_cost": Decimal("-0.0166"), "failed_fee": FEE}
    assert delta.errors == {30007: 1}


def test_the_first_result_adds_the_whole_contribution() -> None:
    delta = difference(contribution(sent(1)), Contribution())
    assert delta.counts == {"messages": 1, "segments": 1, "segment_cost": US}
    assert delta.errors == {}


# ---------------------------------------------------------------------------------------------
# Conditions for alerts


@pytest.mark.parametrize(
    ("state", "reason", "kind"),
    [
        ("paused", run_reasons.failure_threshold(12, 200), AlertKind.FAILURE_THRESHOLD),
        ("paused", run_reasons.twilio_refused(20003, "Authenticate"), AlertKind.TWILIO_AUTH),
        ("paused", run_reasons.twilio_refused(30002, "account suspended"), AlertKind.TWILIO_AUTH),
        ("paused", run_reasons.twilio_refused(21606, "not a valid message-capable number"), AlertKind.TWILIO_REFUSED),
        ("paused", run_reasons.twilio_refused(30032, "toll-free number not verified"), AlertKind.TOLL_FREE_RESTRICTED),
        ("refused", run_reasons.sender_unverified("+18885550100", "pending", nanp_recipients=3, recipients=4),
         AlertKind.TOLL_FREE_RESTRICTED),
        ("paused", RunReason("toll_free_cap", message="daily cap of 2000 reached"), AlertKind.TOLL_FREE_RESTRICTED),
        ("over_limit", run_reasons.segment_limit(30000, 10000, 20000, limit_of="campaign"), AlertKind.SEGMENT_LIMIT),
        ("missed", run_reasons.too_late(7200, 3600), AlertKind.RUN_MISSED),
        ("failed", run_reasons.failure("imis_unavailable", "iMIS did not answer after 5 tries"),
         AlertKind.IMIS_UNREACHABLE),
        ("failed", run_reasons.failure("imis_credentials_rejected", "iMIS refused the credentials"),
         AlertKind.IMIS_UNREACHABLE),
        ("failed", run_reasons.failure("iqa_not_found", "$/Textpulse/Members"), AlertKind.IQA_FAILED),
        ("failed", run_reasons.failure("csv_unreadable", "no header"), AlertKind.RUN_FAILED),
        ("failed", None, AlertKind.RUN_FAILED),
        ("paused", None, None),  # paused by staff
        # A reason stored before reasons had codes (migration 0034 names it so): words only, no alert.
        ("paused", RunReason("unspecified", message="paused by jane@example.org"), None),
    ],
)
def test_which_alert_a_run_needs(state: str, reason: RunReason | None, kind: AlertKind | None) -> None:
    assert classify_run(state, reason) == kind


def test_a_completed_run_alerts_only_when_it_sent_nothing() -> None:
    assert classify_run("completed", run_reasons.no_recipients(12), sent=0) is AlertKind.NOTHING_SENT
    assert classify_run("completed", None, sent=0) is AlertKind.NOTHING_SENT  # every send failed
    assert classify_run("completed", None, sent=1) is None


def test_the_twilio_code_decides_not_the_words() -> None:
    # A Twilio message that happens to mention a limit or a sender does not change the alert.
    worded = run_reasons.twilio_refused(21606, "segment_limit: +18885550100 is pending")
    assert classify_run("paused", worded) is AlertKind.TWILIO_REFUSED


@pytest.mark.parametrize(
    ("used", "allowance", "kind"),
    [(0, 1000, None), (799, 1000, None), (800, 1000, AlertKind.USAGE_80), (999, 1000, AlertKind.USAGE_80),
     (1000, 1000, AlertKind.USAGE_100), (5000, 1000, AlertKind.USAGE_100), (5000, None, None), (1, 0, None)],
)
def test_allowance_thresholds(used: int, allowance: int | None, kind: AlertKind | None) -> None:
    assert usage_threshold(used, allowance) == kind


def test_opted_out_failures_alert_needs_a_count_and_a_share() -> None:
    rule = OptedOutRule(min_count=10, min_share=0.25)
    assert not rule.fires(9, 9)  # a handful is noise
    assert not rule.fires(10, 100)  # a small share of the failures
    assert rule.fires(10, 40) and rule.fires(30, 31)
    assert not rule.fires(10, 0)


def test_a_settled_price_replaces_the_estimate_in_the_actual_cost_and_an_unsettled_one_stays_provisional() -> None:
    unsettled = sent(1, status="delivered")
    settled = apply_status(unsettled, "delivered", None, Decimal("0.0079"))
    delta = difference(contribution(settled), contribution(unsettled))
    assert delta.counts == {"reported_cost": Decimal("0.0079"), "settled_messages": 1, "settled_estimate": US,
                            "settled_price": Decimal("0.0079")}

    def actual(*messages: MessageFacts) -> tuple[Decimal, bool]:
        parts = [contribution(m) for m in messages]
        cost = sum((p.segment_cost + p.failed_fee + p.pumping_fee for p in parts), Decimal(0))
        settled_estimate = sum((p.settled_estimate for p in parts), Decimal(0))
        settled_price = sum((p.settled_price for p in parts), Decimal(0))
        provisional = sum(p.settled_messages for p in parts) < sum(p.messages for p in parts)
        return cost - settled_estimate + settled_price, provisional

    assert actual(settled) == (Decimal("0.0079"), False)
    assert actual(settled, unsettled) == (Decimal("0.0079") + US, True)
    # A second report of the same price changes nothing.
    assert apply_status(settled, "delivered", None, Decimal("0.0079")) == settled
