"""What one message costs and counts for: Twilio's charging rules (docs/twilio.md#pricing), pure.

A message's facts (``MessageFacts``: its send-result, then the statuses Twilio reported) decide its
``Contribution`` to the usage rollups. Handlers apply ``contribution(after) - contribution(before)``,
so an event that changes nothing (a redelivery, a stale status) adds nothing.

Charging rules:

- A message Twilio accepted is charged ``segments x price`` of its destination unless it ends
  ``failed`` (or ``canceled``): ``sent``, ``delivered`` and ``undelivered`` were attempted and are charged.
  Until its final status arrives, a message is counted as charged (the estimate shown "today").
- A message that ends ``failed`` pays the $0.001 Failed Message Processing Fee, per message, unless its
  error code is exempt (``FEE_EXEMPT_ERRORS`` in ``libs/common/twilio_facts.py``: 30450, 30036, 30002,
  30008, 21408, 30454 and Twilio's internal errors). ``undelivered`` never pays it, and neither does a
  refusal at submission (an API error is no message).
- SMS Pumping Protection is free to US and CA; elsewhere only what Twilio reports is counted.
- Settlement: the charge above is Textpulse's estimate. Once Twilio reports the message's ``price`` it is
  settled: ``settled_estimate`` carries the estimate it replaces (segment cost and failed fee) and
  ``settled_price`` Twilio's price, so actual cost = cost - settled_estimate + settled_price (migration 0032).

    >>> facts = MessageFacts(outcome="sent", segments=2, region="US", unit_price=Decimal("0.0083"))
    >>> contribution(facts).segment_cost
    Decimal('0.0166')
    >>> contribution(apply_status(facts, "failed", 30007, None)).failed_fee
    Decimal('0.001')
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Final, Literal

from libs.common.pricing import PUMPING_PROTECTION_FREE
from libs.common.twilio_facts import FAILED_MESSAGE_FEE, STATUS_RANK, UNSUBSCRIBED_ERROR, pays_failed_message_fee

Outcome = Literal["sent", "failed", "suppressed", "expired", "cancelled", "outside_window", "frequency_capped"]

# Code under which failures without an error code are counted.
NO_CODE: Final = 0
_NOT_CHARGED: Final = frozenset({"failed", "canceled"})
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What is known about one recipient's message. ``error_code`` is the submission's for a refusal,
    the last status's for an accepted message. ``pumping_fee`` is only ever what Twilio reported."""

    outcome: Outcome
    segments: int
    region: str
    unit_price: Decimal | None
    status: str | None = None
    error_code: int | None = None
    reported_price: Decimal | None = None
    pumping_fee: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one message adds to a rollup; ``error_code`` is the code its failure is counted under."""

    messages: int = 0
    segments: int = 0
    delivered: int = 0
    undelivered: int = 0
    failed: int = 0
    dropped: int = 0
    opted_out_failures: int = 0
    unpriced_segments: int = 0
    segment_cost: Decimal = _ZERO
    failed_fee: Decimal = _ZERO
    pumping_fee: Decimal = _ZERO
    reported_cost: Decimal = _ZERO
    settled_messages: int = 0
    settled_estimate: Decimal = _ZERO
    settled_price: Decimal = _ZERO
    error_code: int | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    """The difference between two contributions: counters and money, and error-code counts."""

    counts: dict[str, int | Decimal] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.counts.values()) or any(self.errors.values())

    def get(self, name: str) -> int | Decimal:
        return self.counts.get(name, 0)


_COUNTERS: Final = tuple(f.name for f in fields(Contribution) if f.name != "error_code")


def failed_fee(status: str | None, error_code: int | None) -> Decimal:
    """The Failed Message Processing Fee: $0.001 for a message that ends ``failed`` unless exempt."""
    if pays_failed_message_fee(status, error_code):
        return FAILED_MESSAGE_FEE
    return _ZERO


def pumping_charge(region: str, reported: Decimal | None) -> Decimal:
    """SMS Pumping Protection as charged: nothing to US/CA, else only what Twilio reported."""
    if reported is None or region in PUMPING_PROTECTION_FREE:
        return _ZERO
    return reported


def contribution(facts: MessageFacts | None) -> Contribution:
    """What ``facts`` add to the rollups; an unknown message (None) adds nothing."""
    if facts is None:
        return Contribution()
    if facts.outcome == "sent":
        return _accepted(facts)
    if facts.outcome == "failed":
        # Refused at submission (an API error): counted as a failure, never charged.
        code = facts.error_code if facts.error_code is not None else NO_CODE
        return Contribution(failed=1, error_code=code, opted_out_failures=int(code == UNSUBSCRIBED_ERROR))
    if facts.outcome == "suppressed" and facts.error_code == UNSUBSCRIBED_ERROR:
        # Twilio refused it because the member had replied STOP to this sender (the dispatcher then
        # suppresses the number): a failure to a previously opted-out number, not charged.
        return Contribution(failed=1, opted_out_failures=1, error_code=UNSUBSCRIBED_ERROR)
    return Contribution(dropped=1)


def _accepted(facts: MessageFacts) -> Contribution:
    status, code = facts.status, facts.error_code
    charged = status not in _NOT_CHARGED
    priced = facts.unit_price is not None
    is_failure = status in ("failed", "undelivered")
    segment_cost = facts.unit_price * facts.segments if charged and facts.unit_price is not None else _ZERO
    fee = failed_fee(status, code)
    settled = facts.reported_price is not None
    return Contribution(
        messages=1,
        segments=facts.segments,
        delivered=int(status == "delivered"),
        undelivered=int(status == "undelivered"),
        failed=int(status == "failed"),
        opted_out_failures=int(status == "failed" and code == UNSUBSCRIBED_ERROR),
        unpriced_segments=facts.segments if charged and not priced else 0,
        segment_cost=segment_cost,
        failed_fee=fee,
        pumping_fee=pumping_charge(facts.region, facts.pumping_fee),
        reported_cost=facts.reported_price or _ZERO,
        settled_messages=int(settled),
        settled_estimate=segment_cost + fee if settled else _ZERO,
        settled_price=facts.reported_price or _ZERO,
        error_code=(code if code is not None else NO_CODE) if is_failure else None,
    )


def difference(after: Contribution, before: Contribution) -> Delta:
    """``after - before``, leaving out what did not change."""
    counts: dict[str, int | Decimal] = {}
    for name in _COUNTERS:
        change = getattr(after, name) - getattr(before, name)
        if change:
            counts[name] = change
    errors: dict[int, int] = {}
    if before.error_code is not None:
        errors[before.error_code] = errors.get(before.error_code, 0) - 1
    if after.error_code is not None:
        errors[after.error_code] = errors.get(after.error_code, 0) + 1
    return Delta(counts, {code: n for code, n in errors.items() if n})


def apply_status(facts: MessageFacts, status: str, error_code: int | None, price: Decimal | None) -> MessageFacts:
    """``facts`` after one status callback. A status that does not rank higher changes only a price not
    known yet (callbacks come out of order and twice, and the first final status stays); an unknown
    status, or a status of a message Twilio never accepted, changes nothing."""
    rank = STATUS_RANK.get(status)
    if facts.outcome != "sent" or rank is None:
        return facts
    if rank > STATUS_RANK.get(facts.status or "", 0):
        return replace(facts, status=status, error_code=error_code,
                       reported_price=price if price is not None else facts.reported_price)
    if price is not None and facts.reported_price is None:
        return replace(facts, reported_price=price)
    return facts
