"""A run's reason: a code plus typed facts, worded for people in one place (libs/common/run_reasons.py)."""

from __future__ import annotations

import pytest

from libs.common import run_reasons
from libs.common.run_reasons import RunReason

# Each reason the services write, and the sentence people saw before reasons had codes: unchanged.
SENTENCES = [
    (run_reasons.no_recipients(12), "no_recipients: all 12 members were excluded"),
    (run_reasons.sender_unverified("+18885550100", "pending", nanp_recipients=1200, recipients=1500),
     "sender_unverified: +18885550100 is pending and cannot text US/Canada; 1,200 of 1,500 recipients are there"),
    (run_reasons.sender_unverified("+18885550100", "in_review"),
     "sender_unverified: +18885550100 is in_review; it cannot text US/Canada"),
    (run_reasons.segment_limit(9, 9, 8, limit_of="campaign"),
     "segment_limit: 9 segments for 9 recipients exceed the campaign's segment limit of 8"),
    (run_reasons.segment_limit(30, 10, 5, limit_of="account"),
     "segment_limit: 30 segments for 10 recipients exceed the account's max segments of 5"),
    (run_reasons.twilio_refused(20003, "Authenticate"), "twilio_20003: Authenticate"),
    (run_reasons.toll_free_blocked(),
     "twilio_30032: the toll-free sender is not verified; Twilio blocks its texts to US/Canada"),
    (run_reasons.failure_threshold(12, 200), "failure_threshold: 12 of the last 200 sends failed"),
    (run_reasons.too_late(7200, 3600), "too_late: found 7200 s late, more than the campaign's 3600 s; not sent"),
    (run_reasons.failure("imis_unavailable", "$/Members: iMIS did not answer"),
     "imis_unavailable: $/Members: iMIS did not answer"),
    (run_reasons.rescheduled("send-now"), "rescheduled: replaced by send-now"),
    (run_reasons.rescheduled("a new schedule"), "rescheduled: replaced by a new schedule"),
    (run_reasons.campaign_cancelled(), "campaign_cancelled: the campaign was cancelled"),
]


@pytest.mark.parametrize(("reason", "sentence"), SENTENCES, ids=[r.code for r, _ in SENTENCES])
def test_each_reason_reads_as_it_did_and_comes_back_from_its_row(reason: RunReason, sentence: str) -> None:
    assert reason.text == sentence
    stored = run_reasons.columns(reason)
    assert (stored["reason"], stored["reason_code"]) == (sentence, reason.code)
    again = RunReason.from_stored(stored["reason_code"], stored["reason_detail"])
    assert again == reason and again is not None and again.text == sentence


def test_the_facts_are_fields_not_words() -> None:
    refused = run_reasons.sender_unverified("+18885550100", "pending", nanp_recipients=3, recipients=4)
    assert refused.detail() == {"sender": "+18885550100", "verification": "pending",
                                "counts": {"nanp_recipients": 3, "recipients": 4}}
    assert run_reasons.twilio_refused(30032, "blocked", sender="+18885550100").detail() == {
        "error_code": 30032, "message": "blocked", "sender": "+18885550100"}


def test_no_reason_is_stored_as_nothing() -> None:
    assert run_reasons.columns(None) == {"reason": None, "reason_code": None, "reason_detail": "{}"}
    assert RunReason.from_stored(None, "{}") is None


def test_a_cause_quoted_from_elsewhere_is_cut_to_the_column_limit() -> None:
    long = run_reasons.failure("iqa_rejected", "x" * 5000)
    assert len(long.text) == run_reasons.MAX_TEXT and long.text.startswith("iqa_rejected: xxx")
