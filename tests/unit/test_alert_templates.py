"""Every alert e-mail: both parts say the same thing, name the campaign and figures, and link to the page."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from typing import Any

import aiosmtplib
import pytest

from libs.common.alert_templates import AlertKind, render
from libs.common.alerts import QUIET_PERIODS, recipients_for
from libs.common.backoff import retry_delay
from libs.common.errors import PermanentError
from libs.common.twilio_facts import error_meaning, error_sentence
from services.usage.mailer import build_message, smtp_verdict

BASE = "https://app.textpulse.test"
RUN = {"org_name": "Acme Nurses", "time_zone": "America/New_York", "campaign_name": "Renewals <March>",
       "campaign_id": "c-1", "run_id": "r-1", "occurrence_at": "2026-03-10T14:00:00+00:00",
       "targeted": 1200, "sent": 400, "failed": 37, "segments": 800}

CASES: list[tuple[AlertKind, dict[str, Any], list[str], str]] = [
    (AlertKind.SEGMENT_LIMIT,
     RUN | {"reason": "segment_limit: 30000 segments exceed the campaign's segment limit of 20000",
            "segment_limit": 20000, "account_max_segments": 25000},
     ["20,000", "25,000", "30000 segments"], "/campaigns/c-1?run=r-1"),
    (AlertKind.FAILURE_THRESHOLD,
     RUN | {"reason": "failure_threshold: 37 of the last 200 sends failed",
            "top_errors": [{"code": 30007, "count": 30}, {"code": 21211, "count": 7}]},
     ["30007: the carrier filtered the message as spam or a violation (30 messages)",
      "21211: the phone number is not valid (7 messages)", "37 of the last 200"], "/campaigns/c-1?run=r-1"),
    (AlertKind.TWILIO_REFUSED, RUN | {"reason": "twilio_21408: Permission denied", "error_code": 21408},
     ["error 21408", "geo permissions"], "/campaigns/c-1?run=r-1"),
    (AlertKind.TWILIO_AUTH, RUN | {"reason": "twilio_20003: Authenticate", "error_code": 20003},
     ["Acme Nurses", "error 20003", "API key"], "/settings#account-title"),
    (AlertKind.TOLL_FREE_RESTRICTED,
     RUN | {"reason": "sender_unverified: +18885550100 is pending", "sender": "+18885550100",
            "verification": "pending"},
     ["+18885550100", "pending", "30032"], "/campaigns/c-1?run=r-1"),
    (AlertKind.TOLL_FREE_RESTRICTED, RUN | {"sender": "+18885550100", "cap_reached": True},
     ["volume cap"], "/campaigns/c-1?run=r-1"),
    (AlertKind.IMIS_UNREACHABLE, RUN | {"reason": "imis_unavailable: iMIS did not answer after 5 tries"},
     ["iMIS did not answer after 5 tries", "Settings > iMIS"], "/campaigns/c-1?run=r-1"),
    (AlertKind.IQA_FAILED, RUN | {"reason": "iqa_not_found: $/Textpulse/Members", "iqa_path": "$/Textpulse/Members"},
     ["$/Textpulse/Members", "IQA"], "/campaigns/c-1?run=r-1"),
    (AlertKind.RUN_FAILED, RUN | {"reason": "csv_unreadable: no header row"}, ["no header row"],
     "/campaigns/c-1?run=r-1"),
    (AlertKind.RUN_MISSED, RUN | {"reason": "found 7200 s late, more than the campaign's 3600 s; not sent"},
     ["Tue 10 Mar 2026, 10:00 EDT", "Send when late"], "/campaigns/c-1"),
    (AlertKind.NOTHING_SENT, RUN | {"reason": "no_recipients: all 12 members were excluded", "targeted": 0, "sent": 0},
     ["all 12 members were excluded", "without sending a single message"], "/campaigns/c-1?run=r-1"),
    (AlertKind.WRITEBACK_STUCK,
     {"org_name": "Acme Nurses", "time_zone": "UTC", "pending": 1234,
      "oldest_at": datetime(2026, 3, 9, 8, 30, tzinfo=UTC), "last_error": "imis_unavailable: 503"},
     ["1,234", "Mon 09 Mar 2026, 08:30 UTC", "imis_unavailable: 503", "TP_SmsPreferences"], "/settings"),
    (AlertKind.USAGE_80,
     {"org_name": "Acme Nurses", "month": "March 2026", "used": 8000, "allowance": 10000, "plan": "Standard",
      "cost": Decimal("66.4")},
     ["80%", "8,000", "10,000", "Standard", "$66.40"], "/"),
    (AlertKind.USAGE_100,
     {"org_name": "Acme Nurses", "month": "March 2026", "used": 10004, "allowance": 10000, "plan": "Standard"},
     ["all of", "10,004"], "/"),
    (AlertKind.OPTED_OUT_FAILURES, RUN | {"opted_out_failures": 25, "failed_fees": Decimal("0.025")},
     ["25", "$0.0250", "Remove these members from your IQA", "$0.001 fee"], "/campaigns/c-1?run=r-1"),
    (AlertKind.WEBHOOK_SIGNATURES_FAILING,
     {"org_name": "Acme Nurses", "time_zone": "UTC", "refusals": 1250, "window_minutes": 10,
      "last_url": "https://sms.acme.example/twilio/inbound"},
     ["1,250", "10 minutes", "https://sms.acme.example/twilio/inbound", "auth token", "webhook URL"],
     "/settings#account-title"),
    (AlertKind.REPLIES_WAITING, RUN | {"replies": 3, "members": ["Ana Diaz (iMIS 1001)", "iMIS 1002"]},
     ["3 new replies", "Ana Diaz (iMIS 1001)", "iMIS 1002", "Open the Inbox"], "/inbox?campaign=c-1"),
]


def test_every_kind_has_a_template_a_case_and_a_quiet_period() -> None:
    assert {kind for kind, *_ in CASES} == set(AlertKind) == set(QUIET_PERIODS)


@pytest.mark.parametrize(("kind", "context", "figures", "path"), CASES, ids=[f"{c[0].value}-{i}" for i, c in
                                                                               enumerate(CASES)])
def test_both_parts_carry_the_figures_the_steps_and_the_link(
    kind: AlertKind, context: dict[str, Any], figures: list[str], path: str
) -> None:
    rendered = render(kind, context, base_url=BASE + "/")
    link = BASE + path
    for part in (rendered.text, rendered.html):
        assert "What to do" in part and link in part
    html_text = rendered.html.replace("&gt;", ">").replace("&lt;", "<").replace("&#x27;", "'").replace("&quot;", '"')
    for figure in figures:
        assert figure in rendered.text, figure
        assert figure in html_text, figure
    if "campaign_name" in context:
        assert "Renewals <March>" in rendered.subject and "Renewals <March>" in rendered.text
        assert "Renewals &lt;March&gt;" in rendered.html and "<March>" not in rendered.html


def test_test_mode_and_reminders_say_so() -> None:
    context = RUN | {"reason": "failed: x"}
    plain = render(AlertKind.RUN_FAILED, context, base_url=BASE)
    both = render(AlertKind.RUN_FAILED, context, base_url=BASE, test=True, reminder=True)
    assert both.subject == f"[Test] Reminder: {plain.subject}"
    assert "test mode" in both.text and "test mode" in both.html and "test mode" not in plain.text


def test_a_subject_is_one_line_whatever_the_campaign_is_called() -> None:
    rendered = render(AlertKind.RUN_FAILED, RUN | {"campaign_name": "Spring\r\nBcc: x@evil.test"}, base_url=BASE)
    assert rendered.subject == 'Campaign "Spring Bcc: x@evil.test" failed'


def test_a_missing_figure_is_named() -> None:
    with pytest.raises(PermanentError, match="'allowance'") as caught:
        render(AlertKind.USAGE_80, {"org_name": "Acme", "month": "March 2026", "used": 8, "plan": "x"}, base_url=BASE)
    assert caught.value.code == "alert_context_invalid"
    with pytest.raises(PermanentError) as unknown:
        render("no_such_kind", {}, base_url=BASE)
    assert unknown.value.code == "alert_kind_unknown"


def test_error_meanings_are_plain_language() -> None:
    assert error_meaning(30007).startswith("the carrier filtered")
    assert error_meaning(None) == "Twilio gave no error code"
    assert error_meaning(99999) == "see Twilio's error dictionary"


def test_recipients_are_the_alert_addresses_then_the_contact_each_once() -> None:
    assert recipients_for(["Ops@acme.org", "", "board@acme.org"], "ops@ACME.org") == ["Ops@acme.org",
                                                                                      "board@acme.org"]
    assert recipients_for([], "jane@acme.org") == ["jane@acme.org"]
    assert recipients_for(["x@acme.org\r\nBcc: evil@example.com", "not-an-address", "a@b@c"], None) == []


def test_the_message_has_a_text_and_an_html_part() -> None:
    rendered = render(AlertKind.RUN_FAILED, RUN | {"reason": "x: y"}, base_url=BASE)
    row = {"recipients": ["ops@acme.org", "jane@acme.org"], "subject": rendered.subject, "message_id": "<a.1@t>",
           "kind": "run_failed", "body_text": rendered.text, "body_html": rendered.html}
    message = build_message(row, sender="Textpulse <alerts@textpulse.test>", now=datetime(2026, 3, 10, tzinfo=UTC))
    parsed = message_from_bytes(bytes(message), policy=policy.default)
    assert parsed["To"] == "ops@acme.org, jane@acme.org" and parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == "<a.1@t>" and parsed["Subject"] == rendered.subject
    assert parsed.get_body(("plain",)).get_content() == rendered.text
    assert parsed.get_body(("html",)).get_content() == rendered.html


def test_which_smtp_failures_are_retried() -> None:
    refused = [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@x"),
               aiosmtplib.SMTPRecipientRefused(553, "denied", "b@x")]
    assert smtp_verdict(aiosmtplib.SMTPRecipientsRefused(refused)) == "fail"
    mixed = [*refused[:1], aiosmtplib.SMTPRecipientRefused(450, "mailbox busy", "c@x")]
    assert smtp_verdict(aiosmtplib.SMTPRecipientsRefused(mixed)) == "retry"
    assert smtp_verdict(aiosmtplib.SMTPDataError(554, "content rejected")) == "fail"
    assert smtp_verdict(aiosmtplib.SMTPAuthenticationError(535, "bad password")) == "retry"
    assert smtp_verdict(aiosmtplib.SMTPConnectError("refused")) == "retry"
    assert smtp_verdict(ConnectionRefusedError()) == "retry"


def test_retries_back_off_to_a_cap() -> None:
    delays = [retry_delay(n, base_s=15, cap_s=1800, jitter=0.5) for n in range(1, 10)]
    assert delays[:3] == [15, 30, 60] and delays[-1] == 1800
    assert retry_delay(1, base_s=15, cap_s=1800, jitter=0.0) == 12.0


def test_an_error_sentence_is_the_meaning_standing_alone() -> None:
    assert error_sentence(30003) == "The phone is off or out of reach."
    assert error_sentence(None) == "Twilio gave no error code."
    assert error_sentence(12345) == "See Twilio's error dictionary."
