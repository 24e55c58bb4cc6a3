"""The inbox's pure rules: which replies get an automatic answer, and the help text's required parts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from libs.common.one_off_texts import help_text
from libs.common.segments import count_segments
from services.api.errors import InvalidInput
from services.api.routes.keyword_settings import KeywordsIn, check_keywords
from services.optout.inbox import OrgAnswers, Reply, answer_for

ORG = OrgAnswers("Harbor Nurses Association", "textpulse", "(617) 555-0100", {"RENEW": "Renew at https://x.org"})


def reply(body: str, *, help: bool = False, by_twilio: bool = False) -> Reply:
    return Reply(org_id=uuid.uuid4(), phone="+16175550100", sender="+18885550100", message_sid="SM1", body=body,
                 help=help, answered_by_twilio=by_twilio, run_id=None, recipient_id=None, received_at=datetime.now(UTC))


def test_the_help_text_names_the_organisation_how_to_opt_out_and_the_contact() -> None:
    text = help_text("Harbor Nurses Association", " (617) 555-0100 ")
    assert text.startswith("Harbor Nurses Association:")
    assert "Reply STOP to opt out" in text and "Questions: (617) 555-0100." in text
    assert count_segments(text).segments == 1
    assert "Questions" not in help_text("Harbor Nurses Association", "")


@pytest.mark.parametrize(("given", "answered"), [
    (reply("HELP", help=True), True),
    (reply("HELP", help=True, by_twilio=True), False),  # Advanced Opt-Out answered it already
    (reply(" renew ", help=False), True),
    (reply("renew my membership", help=False), False),  # not the whole message: an ordinary reply
    (reply("See you Friday"), False),
])
def test_which_replies_get_an_automatic_answer(given: Reply, answered: bool) -> None:
    assert (answer_for(given, ORG) is not None) is answered


def test_help_gets_nothing_from_us_when_twilio_answers_it() -> None:
    twilio_side = OrgAnswers(ORG.name, "twilio", ORG.help_contact, ORG.keywords)
    assert answer_for(reply("HELP", help=True), twilio_side) is None
    assert answer_for(reply("RENEW"), twilio_side) == "Renew at https://x.org"  # our own keywords are ours


@pytest.mark.parametrize(("keywords", "code"), [
    ([{"keyword": "stop", "reply": "x"}], "keyword_reserved"),
    ([{"keyword": "info", "reply": "x"}], "keyword_reserved"),
    ([{"keyword": "RE NEW", "reply": "x"}], "keyword_invalid"),
    ([{"keyword": "RENEW", "reply": "x"}, {"keyword": "renew", "reply": "y"}], "keyword_duplicate"),
    ([{"keyword": "RENEW", "reply": "bad \x00"}], "body_nul"),
])
def test_a_keyword_that_cannot_be_one_is_a_clear_error(keywords: list[dict[str, str]], code: str) -> None:
    body = KeywordsIn.model_validate({"help_answered_by": "twilio", "keywords": keywords})
    with pytest.raises(InvalidInput) as refused:
        check_keywords(body)
    assert refused.value.code == code
