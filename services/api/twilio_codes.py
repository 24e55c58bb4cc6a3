"""Twilio error codes in plain language, for the campaign page's failures table.

Wording is ours, for association staff; the codes and what they mean are Twilio's
(``docs/twilio.md#error-codes-we-act-on``, twilio.com/docs/api/errors). A code not listed is shown with a link
to Twilio's page for it.
"""

from __future__ import annotations

from typing import Final

MEANINGS: Final[dict[int, str]] = {
    0: "Failed without an error code from Twilio.",
    21211: "The number is not a valid phone number.",
    21408: "Sending to this country is not enabled on the Twilio account.",
    21610: "The member has replied STOP to this sender, so Twilio blocks texts to them.",
    21612: "Twilio cannot reach this number from this sender (often a landline or an unsupported route).",
    21614: "The number cannot receive texts (a landline or an invalid mobile number).",
    21617: "The message was longer than 1,600 characters.",
    30001: "Twilio's queue for this sender overflowed; the message was not sent.",
    30002: "The Twilio account is suspended.",
    30003: "The phone is switched off or out of coverage.",
    30004: "The member's carrier or the member blocked the message.",
    30005: "The number does not exist or is no longer in service.",
    30006: "The number is a landline or cannot receive texts from this carrier.",
    30007: "The carrier filtered the message as spam or unwanted.",
    30008: "The carrier reported an unknown error.",
    30032: "The toll-free number is not verified, so US and Canadian carriers refuse its texts.",
    30034: "The sending number is not registered for A2P 10DLC.",
    30036: "The message's validity period ran out before it could be sent.",
    30019: "The message was too long for the member's carrier (a long Unicode text): shorten it.",
    30450: "SMS Pumping Protection blocked this destination for 15-30 minutes (no fee is charged).",
    21606: "The sender cannot text this destination (check the sender's capabilities).",
    21611: "The sender's queue was full; try again later, more slowly.",
}


def meaning(code: int | None) -> str:
    if code is None:
        return MEANINGS[0]
    return MEANINGS.get(code, "See Twilio's description of this error code.")


def docs_url(code: int) -> str:
    return f"https://www.twilio.com/docs/api/errors/{code}"
