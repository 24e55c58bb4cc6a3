"""Why a run sent nothing, in plain words for the campaign page. Pure.

Runs carry a reason (:mod:`libs.common.run_reasons`, written by services/audience, services/dispatcher,
services/scheduler); its code picks the headline and its words are kept as the detail.

    >>> from libs.common.run_reasons import no_recipients
    >>> explain("completed", no_recipients(12), sent=0)
    'Not sent: every member of the audience was left out (all 12 members were excluded).'
    >>> explain("completed", None, sent=12) is None
    True
"""

from __future__ import annotations

from typing import Final

from libs.common.run_endings import RUN_ENDED
from libs.common.run_reasons import RunReason

_HEADLINES: Final = {
    "segment_limit": "it needs more segments than the limit allows",
    "account_max_segments": "it needs more segments than the account allows",
    "sender_unverified": "its sender is not verified to text US and Canada numbers",
    "sender_missing": "it has no sender, and the organisation has no default sender",
    "no_recipients": "every member of the audience was left out",
    "too_late": "it was found too late to send",
    "body_empty": "the message is empty",
    "audience_too_large": "its audience has more members than one run may have",
}
_BY_STATE: Final = {
    "over_limit": "it needs more segments than the limit allows",
    "refused": "the sender was refused",
    "missed": "it was found too late to send",
    "failed": "the audience could not be read",
    "completed": "no message could be sent",
}
_STEPS: Final = "Edit the campaign to fix it, then send it again."


def sent_nothing(state: str, sent: int) -> bool:
    """A run that has ended without one message accepted (a cancelled run is staff's choice, not news)."""
    return state in RUN_ENDED and state != "cancelled" and sent == 0


def explain(state: str, reason: RunReason | None, *, sent: int) -> str | None:
    """"Not sent: <headline> (<detail>)." for a run that ended without sending; None for any other run."""
    if not sent_nothing(state, sent):
        return None
    headline = _HEADLINES.get(reason.code if reason else "", _BY_STATE.get(state, "nothing was sent"))
    detail = (reason.words if reason else "").strip().rstrip(".")
    return f"Not sent: {headline}" + (f" ({detail})." if detail else ".")


def next_step(state: str) -> str:
    """What staff can do about it: a missed run can simply be sent now; the others need a fix first."""
    return "Send it now if the message is still relevant." if state == "missed" else _STEPS
