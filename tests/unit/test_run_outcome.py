"""The campaign page's plain words for a run that sent nothing (services/api/run_outcome.py)."""

from __future__ import annotations

import pytest

from libs.common import run_reasons
from libs.common.run_reasons import RunReason
from services.api.run_outcome import explain, next_step


@pytest.mark.parametrize(
    ("state", "reason", "words"),
    [
        ("over_limit", run_reasons.segment_limit(9, 9, 8, limit_of="campaign"),
         "Not sent: it needs more segments than the limit allows (9 segments for 9 recipients exceed the "
         "campaign's segment limit of 8)."),
        ("refused", run_reasons.sender_unverified("+18885550100", "pending"),
         "Not sent: its sender is not verified to text US and Canada numbers (+18885550100 is pending; it "
         "cannot text US/Canada)."),
        ("completed", run_reasons.no_recipients(3),
         "Not sent: every member of the audience was left out (all 3 members were excluded)."),
        ("missed", run_reasons.too_late(7200, 3600),
         "Not sent: it was found too late to send (found 7200 s late, more than the campaign's 3600 s; not sent)."),
        ("failed", run_reasons.failure("imis_unavailable", "iMIS did not answer after 5 tries"),
         "Not sent: the audience could not be read (iMIS did not answer after 5 tries)."),
        ("failed", None, "Not sent: the audience could not be read."),
        ("refused", run_reasons.twilio_refused(30032, "toll-free number not verified"),
         "Not sent: the sender was refused (toll-free number not verified)."),
        # Stored before reasons had codes (migration 0034): the state picks the headline.
        ("failed", RunReason("unspecified", message="the list was deleted"),
         "Not sent: the audience could not be read (the list was deleted)."),
    ],
)
def test_a_run_that_sent_nothing_is_explained_in_plain_words(state: str, reason: RunReason | None,
                                                             words: str) -> None:
    assert explain(state, reason, sent=0) == words


@pytest.mark.parametrize(("state", "sent"), [("completed", 5), ("sending", 0), ("pending", 0), ("cancelled", 0)])
def test_runs_that_sent_something_are_open_or_were_cancelled_need_no_explaining(state: str, sent: int) -> None:
    assert explain(state, RunReason("x", message="y"), sent=sent) is None


def test_a_missed_run_can_simply_be_sent_now_the_others_need_a_fix_first() -> None:
    assert next_step("missed").startswith("Send it now")
    assert next_step("over_limit").startswith("Edit the campaign")
