"""Twilio message statuses: what a callback may change in the send ledger, and what it costs. Pure.

A callback is applied only when it raises the message's rank (``STATUS_RANK``, ``libs/common/twilio_facts.py``:
Twilio sends them out of order and sometimes twice); among terminal statuses the first one recorded
stays. The ledger's ``price`` is the cost in USD as a positive number to 5 places (Twilio reports
``"-0.00790"``); a ``failed`` message carries Twilio's $0.001 Failed Message Processing Fee unless its
error code is exempt (docs/twilio.md#pricing).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from libs.common.twilio_facts import FAILED_MESSAGE_FEE, STATUS_RANK, pays_failed_message_fee

_PLACES = Decimal("0.00001")  # the ledger's price is numeric(10, 5), as Twilio reports prices
_FEE = FAILED_MESSAGE_FEE.quantize(_PLACES)


def statuses_below(status: str) -> tuple[str, ...]:
    """Every known status a ledger row may hold and still move to ``status``; empty for an unknown one."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        return ()
    return tuple(s for s, r in STATUS_RANK.items() if r < rank)


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
    return price.quantize(_PLACES)


def cost_of(status: str, error_code: int | None, price: Decimal | None) -> Decimal | None:
    """The cost to record with this status: Twilio's price when given, else the failed-message fee."""
    if price is not None:
        return price
    if pays_failed_message_fee(status, error_code):
        return _FEE
    return None
