"""The campaign page's plain words for a run that sent nothing (services/api/run_outcome.py)."""

from __future__ import annotations

import pytest

from services.api.run_outcome import explain, next_step


@pytest.mark.parametrize(
    ("state", "reason", "words"),
    [
        ("over_limit", "segment_limit: 9 segments for 9 recipients exceed the campaign's segment limit of 8",
         "Not sent: it needs more segments than the limit allows (9 segments for 9 recipients exceed the "
         "campaign's segment limit of 8)."),
        ("refused", "sender_unverified: +18885550100 is pending and cannot text US/Canada",
         "Not sent: its sender is not verified to text US and Canada numbers (+18885550100 is pending and "
         "cannot text US/Canada)."),
        ("completed", "no_recipients: all 3 members were excluded",
         "Not sent: every member of the audience was left out (all 3 members were excluded)."),
        ("missed", "too_late: found 7200 s late, more than the campaign's 3600 s; not sent",
         "Not sent: it was found too late to send (found 7200 s late, more than the campaign's 3600 s; not sent)."),
        ("failed", "imis_unavailable: iMIS did not answer after 5 tries",
         "Not sent: the audience could not be read (iMIS did not answer after 5 tries)."),
        ("failed", None, "Not sent: the audience could not be read."),
        ("refused", "twilio_30032: toll-free number not verified",
         "Not sent: the sender was refused (toll-free number not verified)."),
    ],
)
def test_a_run_that_sent_nothing_is_explained_in_plain_words(state: str, reason: str | None, words: str) -> None:
    assert explain(state, reason, sent=0) == words


@pytest.mark.parametrize(("state", "sent"), [("completed", 5), ("sending", 0), ("pending", 0), ("cancelled", 0)])
def test_runs_that_sent_something_are_open_or_were_cancelled_need_no_explaining(state: str, sent: int) -> None:
    assert explain(state, "x: y", sent=sent) is None


def test_a_missed_run_can_simply_be_sent_now_the_others_need_a_fix_first() -> None:
    assert next_step("missed").startswith("Send it now")
    assert next_step("over_limit").startswith("Edit the campaign")
