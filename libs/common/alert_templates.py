"""The alert e-mails: one template per kind, each rendered as a plain-text and an HTML part. Pure.

Every alert says what happened to which campaign, the figures, what to do, and links to the dashboard
page where it can be done. A template is a function of the alert's context (a JSON-able mapping) that
returns a ``Draft``; ``alert_layout`` turns every draft into both parts, so they always say the same thing.

    >>> rendered = render(AlertKind.RUN_MISSED, {"org_name": "Acme", "campaign_name": "Renewals",
    ...     "campaign_id": "c1", "run_id": "r1", "occurrence_at": "2026-03-08T14:00:00+00:00",
    ...     "reason": "found 7200 s late"}, base_url="https://app.example")
    >>> rendered.subject
    'Campaign "Renewals" missed its scheduled time'

Context keys every template may use: ``org_name``, ``time_zone`` (added by ``raise_alert``) and, for a
run, ``campaign_name``, ``campaign_id``, ``run_id``. The keys each kind needs besides are listed in its
builder; a missing one raises ``PermanentError("alert_context_invalid")`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final

from libs.common import cost_labels
from libs.common.alert_layout import AlertContext, Draft, Rendered, lay_out
from libs.common.errors import PermanentError
from libs.common.twilio_facts import error_meaning

__all__ = ["AlertKind", "Draft", "Rendered", "render"]


class AlertKind(StrEnum):
    SEGMENT_LIMIT = "segment_limit"  # run stopped by the campaign's segment limit or the account's max
    FAILURE_THRESHOLD = "failure_threshold"  # run paused: too large a share of sends failed
    TWILIO_REFUSED = "twilio_refused"  # run paused: Twilio refuses every message (config)
    TWILIO_AUTH = "twilio_auth"  # run paused: credentials refused, account suspended, key revoked
    TOLL_FREE_RESTRICTED = "toll_free_restricted"  # sender unverified (30032) or its cap reached
    IMIS_UNREACHABLE = "imis_unreachable"  # audience not resolved: iMIS did not answer
    IQA_FAILED = "iqa_failed"  # audience not resolved: the IQA query failed
    RUN_FAILED = "run_failed"  # any other failed run
    RUN_MISSED = "run_missed"  # a scheduled run found too late to send
    NOTHING_SENT = "nothing_sent"  # a run completed without sending a message (every member left out)
    WRITEBACK_STUCK = "writeback_stuck"  # consent changes waiting too long for iMIS
    USAGE_80 = "usage_80"  # the month's segments passed 80 % of the allowance
    USAGE_100 = "usage_100"  # ... and 100 %
    OPTED_OUT_FAILURES = "opted_out_failures"  # many failures to numbers that had replied STOP
    WEBHOOK_SIGNATURES_FAILING = "webhook_signatures_failing"  # Twilio's webhooks fail signature validation
    REPLIES_WAITING = "replies_waiting"  # members replied to a campaign: the digest to its contact


Builder = Callable[[AlertContext], Draft]


def render(kind: AlertKind | str, context: Mapping[str, Any], *, base_url: str, test: bool = False,
           reminder: bool = False) -> Rendered:
    """Both parts of the ``kind`` alert. Raises PermanentError ``alert_context_invalid`` when the context
    lacks a figure the template needs, ``alert_kind_unknown`` for a kind without a template."""
    try:
        builder = _BUILDERS[AlertKind(kind)]
    except ValueError:
        raise PermanentError("alert_kind_unknown", f"no alert template for kind {kind!r}") from None
    draft = builder(AlertContext(AlertKind(kind).value, context))
    subject = " ".join(draft.subject.split())  # one line: a campaign name may hold a line break
    if reminder:
        subject = f"Reminder: {subject}"
    if test:
        subject = f"[Test] {subject}"
    link = base_url.rstrip("/") + draft.link_path
    text, html = lay_out(draft, link, test=test)
    return Rendered(subject, text, html)


def _run_figures(c: AlertContext) -> list[tuple[str, str]]:
    figures = [("Campaign", c.campaign)]
    if c.get("occurrence_at"):
        figures.append(("Run scheduled for", c.when("occurrence_at")))
    for key, label in (("targeted", "Recipients"), ("sent", "Sent"), ("delivered", "Delivered"), ("failed", "Failed"),
                       ("segments", "Segments sent")):
        if c.get(key) is not None:
            figures.append((label, c.number(key)))
    if c.get("cost") is not None:
        figures.append((cost_labels.ESTIMATED, c.money("cost", places=cost_labels.PLACES)))
    if c.get("actual_cost") is not None:
        actual = c.money("actual_cost", places=cost_labels.PLACES)
        figures.append((cost_labels.ACTUAL, f"{actual} ({cost_labels.PROVISIONAL})" if c.get("cost_provisional")
                        else actual))
    return figures


def _reason(c: AlertContext) -> list[tuple[str, str]]:
    return [("Reason recorded", str(c["reason"]))] if c.get("reason") else []


# ---------------------------------------------------------------------------------------------
# The templates


def _segment_limit(c: AlertContext) -> Draft:
    figures = _run_figures(c)
    if c.get("segment_limit") is not None:
        figures.append(("Campaign segment limit", c.number("segment_limit")))
    if c.get("account_max_segments") is not None:
        figures.append(("Account maximum", c.number("account_max_segments")))
    return Draft(
        subject=f'Campaign "{c.campaign}" was stopped: segment limit reached',
        paragraphs=[f'The run of "{c.campaign}" was stopped before sending because it needs more segments than '
                    "the campaign's limit or the account's maximum allows. Nothing was sent."],
        figures=figures + _reason(c),
        steps=["Check the audience: a larger IQA result or list than expected is the usual cause.",
               "Shorten the message (each 160 plain or 70 Unicode characters is another segment), or raise the "
               "campaign's segment limit on its page.",
               "Then send the campaign again."],
        link_label="Open the run", link_path=c.run_path,
    )


def _failure_threshold(c: AlertContext) -> Draft:
    errors = [f"{row['code']}: {error_meaning(int(row['code']))} ({int(row['count']):,} messages)"
              for row in c.get("top_errors", [])]
    return Draft(
        subject=f'Campaign "{c.campaign}" paused: too many messages failed',
        paragraphs=[f'Textpulse paused the run of "{c.campaign}" because too many of its latest messages failed. '
                    "The members not texted yet are kept; nothing more is sent until you resume it."],
        figures=_run_figures(c) + _reason(c),
        lists=[("Most frequent errors", errors or ["no error codes recorded yet"])],
        steps=["Read the errors above: invalid or landline numbers point at the audience, carrier filtering (30007) "
               "at the message's content, 30032 at the sender's toll-free verification.",
               "Fix the cause, then resume the campaign from its page."],
        link_label="Open the run", link_path=c.run_path,
    )


def _twilio_refused(c: AlertContext) -> Draft:
    code = int(c["error_code"])
    return Draft(
        subject=f'Campaign "{c.campaign}" paused: Twilio refused the messages (error {code})',
        paragraphs=[f'Twilio refused the messages of "{c.campaign}" with error {code}: {error_meaning(code)}. '
                    "Every message of the run would fail the same way, so Textpulse paused it."],
        figures=_run_figures(c) + _reason(c),
        steps=["Check the sender and the Twilio account's settings for this destination (Settings > Twilio, "
               "Settings > Senders); geo permissions are set in the Twilio Console.",
               "Then resume the campaign from its page."],
        link_label="Open the run", link_path=c.run_path,
    )


def _twilio_auth(c: AlertContext) -> Draft:
    code = c.get("error_code")
    meaning = f"error {code}: {error_meaning(int(code))}" if code is not None else "its credentials were refused"
    return Draft(
        subject=f"Twilio is refusing {c['org_name']}'s account: campaign \"{c.campaign}\" paused",
        paragraphs=[f"Twilio refused the requests Textpulse made with {c['org_name']}'s account while sending "
                    f'"{c.campaign}" ({meaning}). The run is paused; no campaign can send until the account works '
                    "again."],
        figures=_run_figures(c) + _reason(c),
        steps=["In the Twilio Console, check that the account is active (not suspended) and that the API key "
               "Textpulse uses has not been revoked.",
               "Enter the current Account SID and API key in Settings > Twilio.",
               "Then resume the campaign from its page."],
        link_label="Open Twilio settings", link_path="/settings#account-title",
    )


def _toll_free_restricted(c: AlertContext) -> Draft:
    sender = c.get("sender", "the campaign's toll-free number")
    if c.get("cap_reached"):
        subject = f'Campaign "{c.campaign}" stopped: {sender} reached its toll-free sending cap'
        lead = (f"{sender} reached the volume cap Twilio applies to a toll-free number whose verification is "
                "not approved yet. Texts beyond it would be blocked, so Textpulse stopped the run.")
    else:
        verification = c.get("verification", "not approved")
        subject = f'Campaign "{c.campaign}" stopped: toll-free number {sender} is not verified'
        lead = (f"Twilio blocks texts to US and Canadian numbers from a toll-free number whose verification is "
                f"{verification} (error 30032), and still charges for them, so Textpulse stopped the run.")
    return Draft(
        subject=subject,
        paragraphs=[lead],
        figures=_run_figures(c) + _reason(c),
        steps=["Check the number's toll-free verification in the Twilio Console (Phone Numbers > Regulatory "
               "Compliance > Toll-Free Verifications).",
               "Send from a verified number (Settings > Senders), or wait until Twilio approves this one.",
               "Then send the campaign again."],
        link_label="Open the run", link_path=c.run_path,
    )


def _imis(c: AlertContext, *, unreachable: bool) -> Draft:
    if unreachable:
        subject = f'Campaign "{c.campaign}" not sent: iMIS could not be reached'
        lead = (f'Textpulse could not read the audience of "{c.campaign}" from iMIS (iMIS did not answer, or refused '
                "Textpulse's sign-in), so nothing was sent.")
        steps = ["Check that the iMIS site is up and that Textpulse's integration user can sign in with the "
                 "password in Settings > iMIS.", "Send the campaign again once iMIS answers."]
    else:
        subject = f'Campaign "{c.campaign}" not sent: its IQA query failed'
        lead = f'iMIS could not run the IQA query that selects the audience of "{c.campaign}", so nothing was sent.'
        steps = ["Open the query in iMIS and run it: check that it still exists at that path, and that Textpulse's "
                 "integration user may run it.", "Then send the campaign again."]
    figures = _run_figures(c) + ([("IQA query", str(c["iqa_path"]))] if c.get("iqa_path") else [])
    return Draft(subject=subject, paragraphs=[lead], figures=figures + _reason(c), steps=steps,
                 link_label="Open the run", link_path=c.run_path)


def _run_failed(c: AlertContext) -> Draft:
    return Draft(
        subject=f'Campaign "{c.campaign}" failed',
        paragraphs=[f'The run of "{c.campaign}" failed and stopped.'],
        figures=_run_figures(c) + _reason(c),
        steps=["Read the reason above and the run's page.", "Send the campaign again once the cause is fixed."],
        link_label="Open the run", link_path=c.run_path,
    )


def _run_missed(c: AlertContext) -> Draft:
    return Draft(
        subject=f'Campaign "{c.campaign}" missed its scheduled time',
        paragraphs=[f'The run of "{c.campaign}" due {c.when("occurrence_at")} was found too late to send, so it was '
                    "not sent: Textpulse does not send late texts unless the campaign allows it."],
        figures=_run_figures(c) + _reason(c),
        steps=["If the message is still relevant, send it now from the campaign's page.",
               "To let late runs go out anyway, turn on \"Send when late\" in the campaign's schedule."],
        link_label="Open the campaign", link_path=f"/campaigns/{c['campaign_id']}",
    )


def _nothing_sent(c: AlertContext) -> Draft:
    return Draft(
        subject=f'Campaign "{c.campaign}" sent nothing',
        paragraphs=[f'The run of "{c.campaign}" ended without sending a single message: every member of its '
                    "audience was left out (opted out, no valid mobile number, a duplicate), or every send failed."],
        figures=_run_figures(c) + _reason(c),
        steps=["Open the run and look at its recipients: each one says why it was left out.",
               "Fix the audience (or the numbers in iMIS), then send the campaign again."],
        link_label="Open the run", link_path=c.run_path,
    )


def _writeback_stuck(c: AlertContext) -> Draft:
    figures = [("Changes waiting", c.number("pending")), ("Waiting since", c.when("oldest_at"))]
    if c.get("last_error"):
        figures.append(("Last error", str(c["last_error"])))
    return Draft(
        subject=f"iMIS write-back is stuck: {c.number('pending')} opt-out changes not in iMIS yet",
        paragraphs=["Opt-outs and opt-ins are waiting to be written to the members' records in iMIS. Textpulse "
                    "already honours them; only iMIS does not show them yet. Textpulse keeps retrying."],
        figures=figures,
        steps=["Check that the iMIS site is up and that the integration user's password is current "
               "(Settings > iMIS).",
               "Check that the TP_SmsPreferences panel still exists in iMIS."],
        link_label="Open iMIS settings", link_path="/settings",
    )


def _usage(c: AlertContext, *, full: bool) -> Draft:
    share = "all" if full else "80%"
    figures = [("Month", str(c["month"])), ("Segments used", c.number("used")),
               ("Monthly allowance", c.number("allowance")), ("Plan", str(c["plan"]))]
    if c.get("cost") is not None:
        figures.append(("Cost so far this month", c.money("cost")))
    steps = ["Check the campaigns scheduled for the rest of the month on the Home page."]
    steps.append("Change the plan in Settings > Subscription if you need a larger allowance." if not full else
                 "Sending goes on; segments beyond the allowance are billed as your plan says. Change the plan "
                 "in Settings > Subscription to raise it.")
    return Draft(
        subject=f"{c['org_name']} has used {share} of this month's text allowance",
        paragraphs=[f"{c['org_name']} has sent {c.number('used')} segments in {c['month']}, "
                    f"{share} of the {c.number('allowance')} its plan includes."],
        figures=figures, steps=steps, link_label="See usage", link_path="/",
    )


def _opted_out_failures(c: AlertContext) -> Draft:
    n = c.number("opted_out_failures")
    figures = _run_figures(c) + [("Failed: member had opted out (21610)", n)]
    if c.get("failed_fees") is not None:
        figures.append(("Failed-message fees so far", c.money("failed_fees")))
    return Draft(
        subject=f'Campaign "{c.campaign}": {n} messages went to numbers that had opted out',
        paragraphs=[f'{n} of the failed messages of "{c.campaign}" went to numbers whose owners had replied STOP. '
                    "Twilio refuses them, and may charge $0.001 for each such message that fails."],
        figures=figures,
        steps=["Remove these members from your IQA (or mark them opted out in iMIS) to avoid the $0.001 fee.",
               "Textpulse has suppressed the numbers, so its later runs skip them."],
        link_label="Open the run", link_path=c.run_path,
    )


def _webhook_signatures_failing(c: AlertContext) -> Draft:
    n = c.number("refusals")
    return Draft(
        subject=f"Twilio's webhooks to {c['org_name']} are being refused: {n} failed signature checks",
        paragraphs=[f"In the last {c.number('window_minutes')} minutes, {n} webhooks naming {c['org_name']}'s "
                    "Twilio account failed signature validation and were refused. If they come from Twilio, "
                    "STOP replies and delivery receipts are not being recorded: Twilio signs each webhook over "
                    "the URL it calls and with the account's auth token, and one of the two no longer matches "
                    "Textpulse's settings."],
        figures=[("Refused webhooks", n), ("Checked against", str(c["last_url"]))],
        steps=["In Settings > Twilio, check that the webhook URL is exactly the one configured in the Twilio "
               "Console for your numbers and Messaging Services (https, host and path).",
               "If the auth token was rotated in the Twilio Console, enter the current one in Settings > Twilio.",
               "If neither changed, someone may be sending forged requests; Textpulse keeps refusing them."],
        link_label="Open Twilio settings", link_path="/settings#account-title",
    )


def _replies_waiting(c: AlertContext) -> Draft:
    n = c.number("replies")
    plural = "y" if n == "1" else "ies"
    members = [str(m) for m in c["members"]]
    return Draft(
        subject=f'{n} new repl{plural} to "{c.campaign}"',
        paragraphs=[f'Members sent {n} new repl{plural} to "{c.campaign}" that Textpulse did not answer itself. '
                    "They are waiting in the Inbox."],
        figures=[("Campaign", c.campaign), ("New replies", n)],
        lists=[("From", members)] if members else [],
        steps=["Open the Inbox to read the replies and answer them.",
               "An administrator can turn these e-mails off in Settings."],
        link_label="Open the Inbox", link_path=f"/inbox?campaign={c['campaign_id']}",
    )


_BUILDERS: Final[Mapping[AlertKind, Builder]] = {
    AlertKind.SEGMENT_LIMIT: _segment_limit,
    AlertKind.FAILURE_THRESHOLD: _failure_threshold,
    AlertKind.TWILIO_REFUSED: _twilio_refused,
    AlertKind.TWILIO_AUTH: _twilio_auth,
    AlertKind.TOLL_FREE_RESTRICTED: _toll_free_restricted,
    AlertKind.IMIS_UNREACHABLE: lambda c: _imis(c, unreachable=True),
    AlertKind.IQA_FAILED: lambda c: _imis(c, unreachable=False),
    AlertKind.RUN_FAILED: _run_failed,
    AlertKind.RUN_MISSED: _run_missed,
    AlertKind.NOTHING_SENT: _nothing_sent,
    AlertKind.WRITEBACK_STUCK: _writeback_stuck,
    AlertKind.USAGE_80: lambda c: _usage(c, full=False),
    AlertKind.USAGE_100: lambda c: _usage(c, full=True),
    AlertKind.OPTED_OUT_FAILURES: _opted_out_failures,
    AlertKind.WEBHOOK_SIGNATURES_FAILING: _webhook_signatures_failing,
    AlertKind.REPLIES_WAITING: _replies_waiting,
}


