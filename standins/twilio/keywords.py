"""Twilio's opt-out keyword rules and the replies it sends itself (docs/twilio.md#opt-out-keywords). Pure.

The whole message must be the keyword (case-insensitive, surrounding spaces ignored): "Stop please" is an
ordinary message. On US toll-free numbers only START and UNSTOP lift a block; YES does not, and is then
treated as an ordinary message (no ``OptOutType``), so a platform cannot mistake it for an opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
TOLL_FREE_OPT_IN = frozenset({"START", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})

OptOutType = Literal["STOP", "START", "HELP"]

DEFAULT_HELP_REPLY = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
DEFAULT_STOP_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from this number. "
    "Reply START to resubscribe."
)
DEFAULT_START_REPLY = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)


@dataclass(frozen=True, slots=True)
class KeywordEffect:
    """What a member's text does: the keyword class (None: an ordinary text) and Twilio's own reply."""

    opt_out_type: OptOutType | None
    auto_reply: str | None


def classify(body: str, *, toll_free: bool) -> OptOutType | None:
    word = body.strip().upper()
    if word in OPT_OUT:
        return "STOP"
    if word in (TOLL_FREE_OPT_IN if toll_free else OPT_IN):
        return "START"
    if word in HELP:
        return "HELP"
    return None


def effect(body: str, *, toll_free: bool, opted_out_before: bool) -> KeywordEffect:
    """The keyword class of ``body`` and the reply Twilio (or, on toll-free, the carrier) sends back."""
    kind = classify(body, toll_free=toll_free)
    typed = body.strip()
    if kind == "STOP":
        if toll_free:
            reply = (
                f'NETWORK MSG: You replied with the word "{typed.lower()}" which blocks all texts sent from this '
                'number. Text back "unstop" to receive messages again.'
            )
        else:
            reply = DEFAULT_STOP_REPLY
        return KeywordEffect("STOP", reply)
    if kind == "START":
        if toll_free:
            reply = f'NETWORK MSG: You have replied "{typed}" and will begin receiving messages again from this number.'
        else:
            reply = DEFAULT_START_REPLY
        return KeywordEffect("START", reply)
    if kind == "HELP":
        # Nothing is sent to a member who is opted out.
        return KeywordEffect("HELP", None if opted_out_before else DEFAULT_HELP_REPLY)
    return KeywordEffect(None, None)
