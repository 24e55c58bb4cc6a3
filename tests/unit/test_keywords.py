"""Keyword classification as Twilio applies it: a table of messages and what they mean.

The rules: docs/twilio.md#opt-out-keywords.
"""

from __future__ import annotations

import pytest

from services.optout.keywords import Classification, Kind, classify

OUT, IN, HELP, OTHER = Kind.OPT_OUT, Kind.OPT_IN, Kind.HELP, Kind.OTHER

# (body, OptOutType, sent to a toll-free number, expected kind, expected keyword)
CASES = [
    # every default opt-out keyword, including the FCC's 2025 additions
    ("STOP", None, True, OUT, "STOP"),
    ("STOPALL", None, True, OUT, "STOPALL"),
    ("UNSUBSCRIBE", None, True, OUT, "UNSUBSCRIBE"),
    ("CANCEL", None, True, OUT, "CANCEL"),
    ("END", None, True, OUT, "END"),
    ("QUIT", None, True, OUT, "QUIT"),
    ("REVOKE", None, True, OUT, "REVOKE"),
    ("OPTOUT", None, True, OUT, "OPTOUT"),
    # case-insensitive, trimmed, whole message only
    ("stop", None, True, OUT, "STOP"),
    ("sToP", None, True, OUT, "STOP"),
    ("  Stop \n", None, True, OUT, "STOP"),
    ("\tunsubscribe\u00a0", None, True, OUT, "UNSUBSCRIBE"),
    ("Stop please", None, True, OTHER, None),
    ("STOP.", None, True, OTHER, None),
    ("OPT OUT", None, True, OTHER, None),
    ("S T O P", None, True, OTHER, None),
    ("please stop texting me", None, True, OTHER, None),
    # opt-in: START and UNSTOP everywhere, YES only off toll-free
    ("START", None, True, IN, "START"),
    ("unstop", None, True, IN, "UNSTOP"),
    ("YES", None, True, OTHER, None),
    ("yes", None, False, IN, "YES"),
    ("START", None, False, IN, "START"),
    # help
    ("HELP", None, True, HELP, "HELP"),
    (" info ", None, True, HELP, "INFO"),
    # ordinary replies
    ("", None, True, OTHER, None),
    ("   ", None, True, OTHER, None),
    ("Thanks, see you at the AGM!", None, True, OTHER, None),
    ("STOPP", None, True, OTHER, None),
    ("ＳＴＯＰ", None, True, OTHER, None),  # full-width letters are not the keyword
    # Advanced Opt-Out's OptOutType wins: custom keywords, other languages
    ("ARRET", "STOP", True, OUT, "STOP"),
    ("Stop please", "STOP", True, OUT, "STOP"),
    ("stop", "STOP", True, OUT, "STOP"),
    ("OUI", "START", True, IN, "START"),
    ("YES", "START", True, IN, "YES"),
    ("AIDE", "HELP", True, HELP, "HELP"),
    ("STOP", "", True, OUT, "STOP"),
    ("STOP", "something-new", True, OUT, "STOP"),  # an OptOutType we do not know: the body decides
    ("hello", "something-new", True, OTHER, None),
]


@pytest.mark.parametrize(("body", "opt_out_type", "toll_free", "kind", "keyword"), CASES)
def test_classification(body: str, opt_out_type: str | None, toll_free: bool, kind: Kind, keyword: str | None) -> None:
    assert classify(body, opt_out_type=opt_out_type, toll_free=toll_free) == Classification(kind, keyword)


def test_only_opt_out_and_opt_in_change_consent() -> None:
    assert classify("STOP").changes_consent and classify("START").changes_consent
    assert not classify("HELP").changes_consent and not classify("hi").changes_consent


def test_an_unknown_sender_counts_as_toll_free() -> None:
    assert classify("YES").kind is Kind.OTHER
