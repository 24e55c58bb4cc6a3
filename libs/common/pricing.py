"""Cost estimates in USD, as Decimal: segments x per-segment price by destination, plus fees.

    >>> table = PriceTable()
    >>> table.cost_for("US", segments=2)
    Decimal('0.0166')

What is counted (``docs/twilio.md#pricing``):

- Twilio charges every segment of a message that is sent, at the destination country's price.
- Since 30 Sept 2024 a message that ends ``failed`` costs a Failed Message Processing Fee of $0.001
  per message, not per segment. The estimate charges it once for each recipient the caller expects
  to fail (``expected_failures``: numbers known to be invalid or opted out).
- SMS Pumping Protection is free for US and CA and may be charged elsewhere (unverified), so the
  estimate flags any other destination rather than pricing it.

A destination without a price is never guessed: it is listed in ``unpriced_regions`` and left out of
the totals. Prices come from settings through :meth:`PriceTable.with_overrides`; the seeds below are
a starting point, not a quote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from libs.common.twilio_facts import FAILED_MESSAGE_FEE

__all__ = [
    "DEFAULT_PRICES",
    "FAILED_MESSAGE_FEE",
    "PUMPING_PROTECTION_FREE",
    "Estimate",
    "PriceTable",
]

PUMPING_PROTECTION_FREE: Final = frozenset({"US", "CA"})

DEFAULT_PRICES: Final[Mapping[str, Decimal]] = MappingProxyType(
    {
        # Twilio's US toll-free outbound price per segment, "current as of October 2026" as quoted by
        # two summaries (docs/twilio.md#pricing, unverified; 2023-24 invoices show 0.0079). Canada assumed equal.
        "US": Decimal("0.0083"),
        "CA": Decimal("0.0083"),
        # Placeholders of the right order of magnitude, NOT from a stored source: set them from
        # Twilio's pricing page or the Pricing API (pricing.twilio.com/v1/Messaging/Countries/XX).
        "GB": Decimal("0.0524"),
        "IE": Decimal("0.0735"),
        "AU": Decimal("0.0515"),
        "NZ": Decimal("0.1071"),
    }
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What sending would cost. ``total`` = ``send_cost`` + ``failed_fee``; all USD, exact Decimals."""

    recipients: int
    segments: int
    send_cost: Decimal
    failed_fee: Decimal
    total: Decimal
    unpriced_regions: tuple[str, ...]
    pumping_protection_regions: tuple[str, ...]

    @property
    def pumping_protection_may_apply(self) -> bool:
        """True when any recipient is outside US/CA, where SMS Pumping Protection may be charged."""
        return bool(self.pumping_protection_regions)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Per-segment prices by ISO 3166 region code, and the failed-message fee. Immutable."""

    per_segment: Mapping[str, Decimal] = field(default_factory=lambda: DEFAULT_PRICES)
    failed_message_fee: Decimal = FAILED_MESSAGE_FEE

    def with_overrides(self, prices: Mapping[str, Decimal | str]) -> PriceTable:
        """A copy with ``prices`` replacing or adding entries; strings are read as exact decimals.

        Raises ValueError for a price that is not a non-negative number or a region code that is not two
        upper-case letters, and TypeError for a float (money is never a float).
        """
        merged = dict(self.per_segment)
        for region, price in prices.items():
            if not isinstance(price, Decimal | str):
                raise TypeError(f"price for {region} must be a Decimal or a string, not {type(price).__name__}")
            try:
                amount = Decimal(price)
            except InvalidOperation:
                raise ValueError(f"price for {region} is not a number: {price!r}") from None
            if len(region) != 2 or not region.isalpha() or not region.isupper():
                raise ValueError(f"price table region {region!r} is not an ISO 3166 code such as 'US'")
            if not amount.is_finite() or amount < 0:
                raise ValueError(f"price for {region} must be a non-negative amount, not {price!r}")
            merged[region] = amount
        return PriceTable(MappingProxyType(merged), self.failed_message_fee)

    def cost_for(self, region: str, segments: int) -> Decimal | None:
        """What one message of ``segments`` segments to ``region`` costs, or None without a price."""
        price = self.per_segment.get(region)
        return None if price is None else price * segments

    def estimate(self, recipients: Iterable[tuple[str, int]], *, expected_failures: int = 0) -> Estimate:
        """Total the cost of one message to each ``(region, segments)`` recipient.

        ``expected_failures`` adds the failed-message fee once per such message; those recipients are
        not in ``recipients`` (they would fail, not be sent). Pure; accepts any iterable, once.
        """
        if expected_failures < 0:
            raise ValueError("expected_failures cannot be negative")
        # Grouping first keeps 100,000 recipients to a handful of Decimal multiplications.
        groups = Counter(recipients)
        send_cost = Decimal(0)
        unpriced: set[str] = set()
        pumping: set[str] = set()
        count = segments = 0
        for (region, parts), members in groups.items():
            count += members
            segments += parts * members
            if region not in PUMPING_PROTECTION_FREE:
                pumping.add(region)
            cost = self.cost_for(region, parts)
            if cost is None:
                unpriced.add(region)
            else:
                send_cost += cost * members
        failed_fee = self.failed_message_fee * expected_failures
        return Estimate(
            recipients=count,
            segments=segments,
            send_cost=send_cost,
            failed_fee=failed_fee,
            total=send_cost + failed_fee,
            unpriced_regions=tuple(sorted(unpriced)),
            pumping_protection_regions=tuple(sorted(pumping)),
        )
