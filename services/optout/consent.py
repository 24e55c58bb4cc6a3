"""What a consent change touches: the member's number, the scopes, and how iMIS is told. Pure.

Scopes (docs/twilio.md#opt-out-keywords): Twilio blocks the pair (member, number replied to), or the whole Messaging
Service when that number is in one; Textpulse mirrors that block as a sender-scoped suppression and
adds its own organisation-wide rule (scope ``''``): a member who says STOP to one sender is not texted
from any other. START or UNSTOP lifts both: the member's latest word is the authority. A block at a
third sender stays until the member answers that sender too, as it does at Twilio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

ORG_WIDE = ""

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SENDER = re.compile(r"^(\+[1-9]\d{6,14}|MG[0-9a-f]{32})$")
_PUNCTUATION = re.compile(r"[\s().\-/]")


@dataclass(frozen=True, slots=True)
class ConsentChange:
    phone: str
    scope: str
    action: str  # opt_out | opt_in

    @property
    def event_sender(self) -> str | None:
        """The ``sender`` of the ConsentChanged event: None for the organisation-wide scope."""
        return None if self.scope == ORG_WIDE else self.scope


def normalize_phone(raw: str, default_prefix: str = "+1") -> str | None:
    """E.164 for what Twilio put in ``From``/``To``, or None (short codes, alphanumerics, junk).

    Twilio sends E.164 already; this only forgives spacing and punctuation, and a bare national number
    (10 digits for ``+1``) gets the organisation's default prefix. It is deliberately more lenient than
    ``libs.common.phone.normalise``, which checks numbering-plan metadata: a STOP from a number Twilio
    delivered must suppress it even if that metadata does not know the range.
    """
    compact = _PUNCTUATION.sub("", raw or "")
    if _E164.match(compact):
        return compact
    if not compact.isdigit():
        return None
    if default_prefix == "+1":
        if len(compact) == 11 and compact.startswith("1"):
            compact = compact[1:]
        return "+1" + compact if len(compact) == 10 else None
    candidate = default_prefix + compact.lstrip("0")  # the national trunk prefix 0 is dropped
    return candidate if _E164.match(candidate) else None


def sender_scope(to: str, messaging_service_sid: str | None) -> str | None:
    """The sender-scoped suppression for a reply to ``to``: its Messaging Service if it is in one."""
    scope = (messaging_service_sid or "").strip() or (to or "").strip()
    return scope if _SENDER.match(scope) else None


def changes_for(phone: str, action: str, scope: str | None) -> list[ConsentChange]:
    """The organisation-wide change, then the sender-scoped one when there is a valid scope."""
    changes = [ConsentChange(phone, ORG_WIDE, action)]
    if scope is not None:
        changes.append(ConsentChange(phone, scope, action))
    return changes


def source_text(keyword: str | None, source: str, phone: str) -> str:
    """What iMIS records as ``SmsOptOutSource``: 'STOP from +14155550134', 'Twilio 21610 for ...'."""
    if source == "keyword":
        return f"{keyword or 'keyword'} from {phone}"[:200]
    if source == "reply":
        return f"Reply revoking consent ('{keyword or 'free text'}') from {phone}"[:200]
    if source == "twilio_21610":
        return f"Twilio 21610 for {phone}"
    return f"{source} change for {phone}"


EventSource = Literal["keyword", "twilio_21610", "staff", "import"]


def event_source(source: str) -> EventSource:
    """The ConsentChanged ``source`` for a consent_history source: a free-text revocation is the member's
    own reply, as a keyword is (so the usage service counts it against the run it answers); the sources of
    staff's decisions (migration 0042) are staff's."""
    if source in ("keyword", "reply"):
        return "keyword"
    if source in ("twilio_21610", "import"):
        return source  # type: ignore[return-value]
    return "staff"


def imis_local_time(moment: datetime, time_zone: str) -> str:
    """iMIS dates carry no zone (docs/imis.md#typed-values): render in the organisation's own time zone."""
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%dT%H:%M:%S")
