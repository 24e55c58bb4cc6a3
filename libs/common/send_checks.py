"""Why a campaign cannot be sent to anyone: the one place its words are made. Pure.

    >>> over_segments(12).message
    '12 segments is over 10: Textpulse will not send a text this long to anyone.'

The API refuses send-now and schedule with these (422, the ``field`` to fix, the ``code``), the previews
return them, and the composer shows them as they come, so a person reads the same sentence everywhere:

- ``segments_over_limit`` (``body``): the text renders to more than :data:`MAX_SEGMENTS` segments.
- ``audience_empty`` (``audience``): nobody would receive it: no members, or every member left out.
- ``sender_unverified`` (``sender_id``): an unverified toll-free sender and US/Canada numbers; Twilio
  blocks those texts (30032) and still charges. :func:`libs.common.audience_rules.decide` refuses a run
  with the same rule, and both take the words from :mod:`libs.common.run_reasons`.
- ``audience_too_large`` (``audience``): more members than one run may have (:func:`member_cap`: the
  organisation's cap, else the platform's). The audience service refuses such a run with the same words
  as soon as it knows the size, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from libs.common import run_reasons
from libs.common.preflight import MAX_SEGMENTS

__all__ = ["NANP_PREFIX", "REASON_WORDS", "Refusal", "member_cap", "nobody_receives", "over_member_cap",
           "over_segments", "sender_cannot_reach"]

# Twilio refuses unverified toll-free senders to the whole +1 zone (30032); the dispatcher checks the same prefix.
NANP_PREFIX: Final = "+1"

# How many members a reason leaves out, in plain words: "3 opted out" (the audience rules' reasons).
REASON_WORDS: Final[Mapping[str, str]] = {
    "duplicate_member": "listed twice",
    "opted_out": "opted out",
    "missing_mobile": "without a mobile number",
    "invalid_number": "with a number that is not valid",
    "bad_number": "with a number that cannot receive texts",
    "render_failed": "whose text cannot be made",
    "over_segment_limit": f"whose text is over {MAX_SEGMENTS} segments",
    "duplicate_number": "sharing another member's number",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A campaign that would reach nobody: which field to fix, a stable code, and the sentence to show."""

    field: str
    code: str
    message: str


def over_segments(segments: int) -> Refusal | None:
    if segments <= MAX_SEGMENTS:
        return None
    return Refusal("body", "segments_over_limit",
                   f"{segments} segments is over {MAX_SEGMENTS}: Textpulse will not send a text this long to anyone.")


def nobody_receives(members: int, recipients: int, by_reason: Mapping[str, int]) -> Refusal | None:
    """Refused when the whole audience was looked at and ``recipients`` is 0."""
    if recipients > 0:
        return None
    if members == 0:
        return Refusal("audience", "audience_empty", "Nobody would receive it: the audience has no members.")
    reasons = ", ".join(f"{n:,} {REASON_WORDS.get(reason, reason.replace('_', ' '))}"
                        for reason, n in sorted(by_reason.items(), key=lambda item: (-item[1], item[0])) if n)
    everyone = "the only member is" if members == 1 else f"all {members:,} members are"
    return Refusal("audience", "audience_empty", f"Nobody would receive it: {everyone} left out ({reasons}).")


def sender_cannot_reach(sender: str, verification: str, nanp_recipients: int, recipients: int) -> Refusal | None:
    """Refused when ``sender`` is not verified and some recipients are in the US/Canada zone."""
    if verification == "verified" or nanp_recipients == 0:
        return None
    reason = run_reasons.sender_unverified(sender, verification, nanp_recipients=nanp_recipients,
                                           recipients=recipients)
    return Refusal("sender_id", reason.code, reason.words)


def member_cap(organisation_cap: int | None, platform_cap: int) -> int:
    """The most members one run may have: the organisation's own cap when it set one, else the platform's."""
    return platform_cap if organisation_cap is None else organisation_cap


def over_member_cap(members: int, cap: int, *, at_least: bool = False) -> Refusal | None:
    """Refused when the audience has more than ``cap`` members (counted before any is left out);
    ``at_least``: ``members`` is as far as it was counted, not its whole size."""
    if members <= cap:
        return None
    reason = run_reasons.audience_too_large(members, cap, at_least=at_least)
    return Refusal("audience", reason.code, reason.words)
