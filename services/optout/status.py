"""Twilio message statuses: their order, and what a callback may change in the send ledger. Pure.

Twilio sends status callbacks out of order and sometimes twice (twilio.md §3), so a callback is applied
only when it raises the message's rank; a terminal status is never left:

    accepted, scheduled  <  queued  <  sending  <  sent  <  delivered, undelivered, failed, canceled

``partially_delivered`` and ``read`` (not SMS) count as terminal. Among terminal statuses the first one
recorded stays. The ledger's ``price`` is the cost in USD as a positive number (Twilio reports
``"-0.00790"``); a ``failed`` message carries Twilio's $0.001 Failed Message Processing Fee unless its
error code is exempt (twilio.md §10).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

RANK: dict[str, int] = {
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
KNOWN_STATUSES: tuple[str, ...] = tuple(RANK)

FAILED_MESSAGE_FEE = Decimal("0.00100")
# Errors for which Twilio waives the failed-message fee (twilio.md §10).
FEE_EXEMPT_ERRORS = frozenset({12400, 20500, 20504, 30103, 30500, 30036, 30002, 30454, 30450, 21408, 30008})

# The error a send to a member who replied STOP fails with; it means "suppress" (twilio.md §7).
UNSUBSCRIBED_ERROR = 21610


def statuses_below(status: str) -> tuple[str, ...]:
    """Every known status a ledger row may hold and still move to ``status``; empty for an unknown one."""
    rank = RANK.get(status)
    if rank is None:
        return ()
    return tuple(s for s, r in RANK.items() if r < rank)


def parse_error_code(raw: str | None) -> int | None:
    """``ErrorCode`` as Twilio sends it ("30003", sometimes absent or empty); None when not a number."""
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


def parse_price(raw: str | None) -> Decimal | None:
    """Twilio's price string ("-0.00790") as a positive cost, rounded to 5 places; None when absent or odd."""
    try:
        price = abs(Decimal((raw or "").strip()))
    except InvalidOperation:
        return None
    if not price.is_finite() or price >= 100_000:
        return None
    return price.quantize(Decimal("0.00001"))


def cost_of(status: str, error_code: int | None, price: Decimal | None) -> Decimal | None:
    """The cost to record with this status: Twilio's price when given, else the failed-message fee."""
    if price is not None:
        return price
    if status == "failed" and error_code not in FEE_EXEMPT_ERRORS:
        return FAILED_MESSAGE_FEE
    return None
