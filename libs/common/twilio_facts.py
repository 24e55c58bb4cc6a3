"""Twilio's facts that more than one service relies on. Pure.

See docs/twilio.md#message-statuses, docs/twilio.md#opt-out-keywords, docs/twilio.md#error-codes-we-act-on
and docs/twilio.md#pricing.

What each service *does* about a fact stays with it: the dispatcher's remedies (``twilio_errors``),
the opt-out service's ledger updates, the usage service's charging rules. The facts live here once.

Message statuses. Twilio sends status callbacks out of order and sometimes twice, so a status is
applied only when it ranks higher than the one recorded; a terminal status is never left:

    accepted, scheduled  <  queued  <  sending  <  sent  <  delivered, undelivered, failed, canceled

``partially_delivered`` and ``read`` (not SMS) count as terminal.

    >>> STATUS_RANK["sent"] < STATUS_RANK["delivered"] == STATUS_RANK["failed"]
    True
    >>> pays_failed_message_fee("failed", 30007), pays_failed_message_fee("failed", 30450)
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

__all__ = [
    "alpha_sender_reaches",
    "is_alpha_sender",
    "BAD_NUMBER_ERRORS",
    "BAD_NUMBER_STATUS_ERRORS",
    "SENDER_UNVERIFIED_ERROR",
    "ERROR_MEANINGS",
    "FAILED_MESSAGE_FEE",
    "FEE_EXEMPT_ERRORS",
    "STATUS_RANK",
    "TOLL_FREE_SEGMENTS_PER_SECOND",
    "UNSUBSCRIBED_ERROR",
    "error_docs_url",
    "error_meaning",
    "error_sentence",
    "pays_failed_message_fee",
]

# An alphanumeric sender ID: up to 11 letters, digits, spaces and + _ & -, not only digits (the same rule is
# in migration 0002). It is one-way and "not supported in the US or Canada", which share +1 with the rest of
# the NANP: a +1 destination always gets a number.
_ALPHA_SENDER = re.compile(r"[A-Za-z0-9 +_&-]{1,11}")


def is_alpha_sender(sender: str) -> bool:
    return _ALPHA_SENDER.fullmatch(sender) is not None and any(c.isalpha() for c in sender)


def alpha_sender_reaches(to: str) -> bool:
    """Whether Twilio delivers a text from an alphanumeric sender ID to the E.164 number ``to``."""
    return not to.startswith("+1")


STATUS_RANK: Final[Mapping[str, int]] = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "partially_delivered": 5,
    "read": 5,
}

# Since 30 Sept 2024 a message that ends ``failed`` costs this, per message (not per segment)...
FAILED_MESSAGE_FEE: Final = Decimal("0.001")
# ... unless its error code is one of these (docs/twilio.md#pricing): Twilio's internal errors, and failures the
# sender could not help (30450 pumping protection, 30036 validity period, 30002 account suspended, ...).
FEE_EXEMPT_ERRORS: Final = frozenset({12400, 20500, 20504, 30103, 30500, 30036, 30002, 30454, 30450, 21408, 30008})

# "Attempt to send to unsubscribed recipient": the member replied STOP to this sender (docs/twilio.md#opt-out-keywords).
# Twilio refuses every later send from it, so the number is suppressed.
UNSUBSCRIBED_ERROR: Final = 21610

# The number cannot receive texts, as Twilio says when refusing the send: not a valid number (21211),
# not reachable from this sender (21612), not a mobile (21614)...
BAD_NUMBER_ERRORS: Final = frozenset({21211, 21612, 21614})
# ... or later, in a status callback: unreachable (30003), unknown to its carrier (30005), a landline (30006).
BAD_NUMBER_STATUS_ERRORS: Final = frozenset({30003, 30005, 30006})
# The toll-free sender is not verified: Twilio blocks (and charges) its texts to US/Canada.
SENDER_UNVERIFIED_ERROR: Final = 30032

# A toll-free number's throughput to US/Canada in whole segments per second (docs/twilio.md#toll-free-senders):
# 3 by default, up to 150 as High-Throughput Toll-Free bought from Twilio. Migration 0041 holds the column to it.
TOLL_FREE_SEGMENTS_PER_SECOND: Final = range(1, 151)


def pays_failed_message_fee(status: str | None, error_code: int | None) -> bool:
    """Whether Twilio charges the Failed Message Processing Fee: the message ended ``failed``, not exempt.

    ``undelivered`` never pays it, and neither does a refusal at submission (an API error is no message).
    """
    return status == "failed" and error_code not in FEE_EXEMPT_ERRORS


# Twilio error codes in plain language (docs/twilio.md#error-codes-we-act-on), for people who never open
# Twilio's docs: the one table for e-mails, pages and reasons. Lower-case clauses, so they read inside a
# sentence ("Twilio refused the messages with error 21606: the sender ..."); error_sentence stands alone.
ERROR_MEANINGS: Final[Mapping[int, str]] = {
    0: "Twilio gave no error code",
    20003: "Twilio refused the account credentials",
    20005: "the Twilio account is not active",
    20404: "Twilio does not know the account or resource",
    20429: "too many requests to Twilio at once",
    21211: "the phone number is not valid",
    21408: "the account may not send to that country (geo permissions)",
    21606: "the sender cannot send to this destination",
    21610: "the member had replied STOP to this sender",
    21611: "the sender's queue is full",
    21612: "the number cannot receive texts",
    21614: "the number is not a mobile (a landline)",
    21617: "the message is too long",
    30001: "Twilio's queue overflowed",
    30002: "the Twilio account is suspended",
    30003: "the phone is off or out of reach",
    30004: "the recipient or their carrier blocked the message",
    30005: "the number is unknown to its carrier",
    30006: "a landline, or a carrier that cannot take texts",
    30007: "the carrier filtered the message as spam or a violation",
    30008: "an unknown carrier error",
    30019: "the message is too large for the carrier",
    30032: "the toll-free number is not verified",
    30034: "the long code is not registered for US texting (10DLC)",
    30036: "the message waited in the queue past its validity period",
    30450: "SMS Pumping Protection blocked the destination for a while",
}


def error_meaning(code: int | None) -> str:
    """``code`` in plain language; None is "no error code", an unlisted code points to Twilio's dictionary."""
    if code is None:
        return ERROR_MEANINGS[0]
    return ERROR_MEANINGS.get(code, "see Twilio's error dictionary")


def error_sentence(code: int | None) -> str:
    """``error_meaning`` as a sentence of its own, for a table of failures."""
    meaning = error_meaning(code)
    return meaning[0].upper() + meaning[1:] + "."


def error_docs_url(code: int) -> str:
    return f"https://www.twilio.com/docs/api/errors/{code}"
