"""What happens to a message when its slot in the queue comes, and what it costs. Pure: ``now`` is passed.

Checked in order: still valid (30036), SMS Pumping Protection (30450), toll-free verification to US/CA
(30032; docs/twilio.md#toll-free-senders), then the carrier-error plans; otherwise ``sent`` then ``delivered``.

Toll-free policy ``blocked`` is the rule since Jan 31, 2024: a number that is not verified sends nothing
to US/CA. Policy ``caps`` is the 2023 rule: restricted numbers 500/day, 1,000/week, 2,000/month;
pending ones 2,000/day, 6,000/week, 10,000/month, counted in segments; rejected ones blocked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from standins.twilio.config import TollfreePolicy
from standins.twilio.faults import FAILED_CODES, FaultBook
from standins.twilio.formats import price
from standins.twilio.messages import Message
from standins.twilio.senders import Number

CAPS: dict[str, tuple[int, int, int]] = {"restricted": (500, 1_000, 2_000), "pending": (2_000, 6_000, 10_000)}
# Failed messages with these codes pay no failed-message fee (docs/twilio.md#pricing).
FEE_EXEMPT = frozenset({30036, 30002, 30450, 30008, 21408})


@dataclass(frozen=True, slots=True)
class Outcome:
    """``failed`` outcomes never reach ``sent``; the others are ``sent`` first, then ``final``."""

    final: str  # delivered | undelivered | failed
    error_code: int | None = None


@dataclass(slots=True)
class VolumeCounter:
    """Segments each number sent to US/CA per UTC day, ISO week and month (for the ``caps`` policy)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def within_caps(self, number: str, segments: int, caps: tuple[int, int, int], now: float) -> bool:
        t = time.gmtime(now)
        year, week, _ = time.strftime("%G %V %u", t).split()
        keys = (
            (number, time.strftime("%Y-%m-%d", t)),
            (number, f"{year}-W{week}"),
            (number, time.strftime("%Y-%m", t)),
        )
        if any(self.counts.get(k, 0) + segments > cap for k, cap in zip(keys, caps, strict=True)):
            return False
        for k in keys:
            self.counts[k] = self.counts.get(k, 0) + segments
        return True


def _nanp(to: str) -> bool:
    return to.startswith("+1")


def decide(
    message: Message,
    number: Number | None,
    faults: FaultBook,
    policy: TollfreePolicy,
    volume: VolumeCounter,
    now: float,
) -> Outcome:
    if message.left_queue_at is not None and message.left_queue_at - message.accepted_at > message.validity_period:
        return Outcome("failed", 30036)
    if faults.pumping_blocked(message.to):
        return Outcome("failed", 30450)
    if number is not None and number.toll_free and number.verification != "verified" and _nanp(message.to):
        caps = CAPS.get(number.verification)
        if policy == "blocked" or caps is None or not volume.within_caps(
            number.phone_number, message.num_segments, caps, now
        ):
            return Outcome("failed", 30032)
    if faults.carrier:
        code = faults.carrier_error(message.to, message.sender)
        if code is not None:
            return Outcome("failed" if code in FAILED_CODES else "undelivered", code)
    return Outcome("delivered")


def charge(message: Message, per_segment: Decimal, failed_fee: Decimal) -> str:
    """The ``price`` once a message is done: per segment if delivery was tried, else the failed fee."""
    if message.status == "failed":
        return price(Decimal(0) if message.error_code in FEE_EXEMPT else failed_fee)
    return price(per_segment * message.num_segments)
