"""Why a run is in its state: a stable code plus typed facts, and the one place that words them for people.

Services record a reason with the run's state (``campaign_runs.state_reason_code`` and
``state_reason_detail``, migration 0034) and read it back as a :class:`RunReason`; the alert watcher
decides on ``code``, ``error_code`` and ``sender``, never on words. ``state_reason`` keeps the sentence
for people, ``"<code>: <words>"``, rendered here when the reason is written, and shown as it is by the
dashboard, the API and the alert e-mails.

    >>> failure_threshold(12, 200).text
    'failure_threshold: 12 of the last 200 sends failed'
    >>> reason = sender_unverified("+18885550100", "pending")
    >>> (reason.code, reason.sender, reason.verification)
    ('sender_unverified', '+18885550100', 'pending')
    >>> RunReason.from_stored(reason.code, reason.detail_json()) == reason
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from libs.common.approval import ApprovalProblem

__all__ = [
    "RunReason", "audience_too_large", "campaign_cancelled", "columns", "failure", "failure_threshold", "no_recipients",
    "not_approved", "rescheduled", "segment_limit", "sender_unverified", "toll_free_blocked", "too_late",
    "twilio_refused",
]

# state_reason is for people; a cause quoted from elsewhere (iMIS's or Twilio's words) is cut to this.
MAX_TEXT: Final = 2000
_LIMIT_NAMES: Final = {"campaign": "the campaign's segment limit", "account": "the account's max segments"}


@dataclass(frozen=True, slots=True)
class RunReason:
    """A run's reason. ``message`` is a cause in words from elsewhere (an iMIS error, Twilio's message);
    ``counts`` the figures a person needs (``excluded``, ``segments``, ``recipients``, ``limit``, ...)."""

    code: str
    sender: str | None = None
    verification: str | None = None
    error_code: int | None = None
    limit_of: Literal["campaign", "account"] | None = None
    message: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def words(self) -> str:
        """The reason in words, without its code."""
        return _words(self)

    @property
    def text(self) -> str:
        """The sentence stored in ``state_reason`` and shown to people: ``"<code>: <words>"``."""
        words = self.words
        return (f"{self.code}: {words}" if words else self.code)[:MAX_TEXT]

    def detail(self) -> dict[str, Any]:
        """The typed facts, as stored in ``state_reason_detail`` (fields left empty are omitted)."""
        stored: dict[str, Any] = {
            "sender": self.sender, "verification": self.verification, "error_code": self.error_code,
            "limit_of": self.limit_of, "message": self.message, "counts": dict(self.counts) or None,
        }
        return {key: value for key, value in stored.items() if value is not None}

    def detail_json(self) -> str:
        return json.dumps(self.detail(), sort_keys=True)

    @classmethod
    def from_stored(cls, code: str | None, detail: str | Mapping[str, Any] | None) -> RunReason | None:
        """The reason of a row (``state_reason_code``, ``state_reason_detail`` as text or decoded); None
        for a run without one (a pause by staff, a run still going)."""
        if code is None:
            return None
        facts: Mapping[str, Any] = json.loads(detail) if isinstance(detail, str) else (detail or {})
        return cls(code, sender=facts.get("sender"), verification=facts.get("verification"),
                   error_code=facts.get("error_code"), limit_of=facts.get("limit_of"),
                   message=facts.get("message"), counts=dict(facts.get("counts") or {}))


def columns(reason: RunReason | None) -> dict[str, str | None]:
    """The named-query values of a reason: ``:reason``, ``:reason_code``, ``:reason_detail``."""
    if reason is None:
        return {"reason": None, "reason_code": None, "reason_detail": "{}"}
    return {"reason": reason.text, "reason_code": reason.code, "reason_detail": reason.detail_json()}


def _words(r: RunReason) -> str:
    if r.message is not None:
        return r.message[:MAX_TEXT]
    c = r.counts
    if r.code == "no_recipients":
        return f"all {c['excluded']} members were excluded"
    if r.code == "sender_unverified" and "recipients" in c:
        return (f"{r.sender} is {r.verification} and cannot text US/Canada; {c['nanp_recipients']:,} of "
                f"{c['recipients']:,} recipients are there")
    if r.code == "sender_unverified":
        return f"{r.sender} is {r.verification}; it cannot text US/Canada"
    if r.code == "segment_limit":
        return (f"{c['segments']} segments for {c['recipients']} recipients exceed "
                f"{_LIMIT_NAMES[r.limit_of or 'campaign']} of {c['limit']}")
    if r.code == "failure_threshold":
        return f"{c['failed']} of the last {c['total']} sends failed"
    if r.code == "audience_too_large":
        size = f"at least {c['members']:,}" if c.get("at_least") else f"{c['members']:,}"
        return (f"The audience has {size} members; one run may have at most {c['cap']:,}. Narrow the audience, "
                "or ask an admin to raise the organisation's member cap.")
    if r.code == "too_late":
        return f"found {c['late_s']} s late, more than the campaign's {c['max_lateness_s']} s; not sent"
    return ""


# ---------------------------------------------------------------------------------------------
# The reasons the services write, one constructor each


def no_recipients(excluded: int) -> RunReason:
    """The audience service: every member was left out (the run completes with nothing to send)."""
    return RunReason("no_recipients", counts={"excluded": excluded})


def sender_unverified(sender: str, verification: str, *, nanp_recipients: int | None = None,
                      recipients: int | None = None) -> RunReason:
    """An unverified toll-free sender and US/Canada recipients (with the counts when they are known)."""
    counts = {} if recipients is None else {"nanp_recipients": nanp_recipients or 0, "recipients": recipients}
    return RunReason("sender_unverified", sender=sender, verification=verification, counts=counts)


def segment_limit(segments: int, recipients: int, limit: int, *,
                  limit_of: Literal["campaign", "account"]) -> RunReason:
    return RunReason("segment_limit", limit_of=limit_of,
                     counts={"segments": segments, "recipients": recipients, "limit": limit})


def twilio_refused(error_code: int | None, message: str, *, sender: str | None = None) -> RunReason:
    """Twilio refused the account or sender for every text of the run (``twilio_<code>``)."""
    return RunReason(f"twilio_{error_code}", error_code=error_code, message=message, sender=sender)


def toll_free_blocked() -> RunReason:
    """A 30032 status callback: Twilio blocked a text because its toll-free sender is not verified."""
    return twilio_refused(30032, "the toll-free sender is not verified; Twilio blocks its texts to US/Canada")


def failure_threshold(failed: int, total: int) -> RunReason:
    return RunReason("failure_threshold", counts={"failed": failed, "total": total})


def too_late(late_s: int, max_lateness_s: int) -> RunReason:
    return RunReason("too_late", counts={"late_s": late_s, "max_lateness_s": max_lateness_s})


def audience_too_large(members: int, cap: int, *, at_least: bool = False) -> RunReason:
    """More members than one run may have; ``at_least``: counted this far, not the whole audience."""
    return RunReason("audience_too_large", counts={"members": members, "cap": cap, "at_least": int(at_least)})


def failure(code: str, message: str) -> RunReason:
    """A run that could not be resolved: the error's own code and message (``imis_unavailable``, ...)."""
    return RunReason(code, message=message)


def rescheduled(replaced_by: Literal["a new schedule", "send-now", "a change awaiting approval"]) -> RunReason:
    return RunReason("rescheduled", message=f"replaced by {replaced_by}")


def not_approved(problem: ApprovalProblem) -> RunReason:
    """The scheduler found the content not what was approved (``libs.common.approval``): the run never started."""
    words = ("the organisation requires approval and the campaign has none" if problem == "approval_required"
             else "what was approved (wording, audience, sender, link tracking or transactional) changed; "
                  "the campaign is back in review")
    return RunReason(problem, message=words)


def campaign_cancelled() -> RunReason:
    return RunReason("campaign_cancelled", message="the campaign was cancelled")
