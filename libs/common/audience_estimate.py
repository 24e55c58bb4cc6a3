"""What a whole audience would receive and cost, from a classified sample of it. Pure.

A preview classifies a bounded sample (the first rows of an IQA, a CSV upload or a list) with the run's
rules (:func:`libs.common.audience_rules.classify`), each member's text rendered with their own merge
values, and scales it to the audience's size (iMIS's ``TotalCount``, the rows of a CSV or list):

- recipients: the sample's share of recipients times the audience; exact when the sample is the audience.
- segments and cost: a range. ``expected`` scales the sample's average per recipient. ``low`` and ``high``
  keep the sample's exact figures and price each recipient not in it at the fewest / the most segments
  (and cents) that any sampled recipient's text needs: accented names turn some texts into UCS-2, so a
  1-segment body can cost twice as much for some members. All three are equal for a whole audience.

The first rows of a query are not a random sample (iMIS returns them in the query's order), so the range
is what the sample's own spread allows, not a confidence interval.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Generic, TypeVar

from libs.common.audience_rules import SnapshotRow, totals
from libs.common.pricing import PriceTable

__all__ = ["AudienceEstimate", "Spread", "estimate_audience"]

N = TypeVar("N", int, Decimal)


@dataclass(frozen=True, slots=True)
class Spread(Generic[N]):
    low: N
    expected: N
    high: N


@dataclass(frozen=True, slots=True)
class AudienceEstimate:
    """``audience`` members, of whom ``sample`` were classified (``complete``: all of them)."""

    audience: int
    sample: int
    complete: bool
    sample_recipients: int
    by_reason: Mapping[str, int]
    encodings: Mapping[str, int]
    segments_per_recipient: Spread[int] | None  # min / median / max over the sample's recipients
    recipients: int
    segments: Spread[int]
    cost: Spread[Decimal]
    nanp_recipients: int  # in the sample
    unpriced_regions: tuple[str, ...] = ()
    pumping_protection_regions: tuple[str, ...] = field(default=())


def estimate_audience(rows: Sequence[SnapshotRow], *, audience: int, refused: Mapping[str, int] | None = None,
                      prices: PriceTable | None = None) -> AudienceEstimate:
    """Scale classified sample ``rows`` (the first of ``audience`` members) to the whole audience.

    ``refused`` are members counted exactly elsewhere (a CSV's rows refused when it was read): they add to
    ``audience``, ``sample`` and ``by_reason`` but are not scaled. Raises ValueError when the sample is
    larger than the audience it was drawn from.
    """
    if len(rows) > audience:
        raise ValueError(f"a sample of {len(rows)} from an audience of {audience}")
    table = prices or PriceTable()
    figures = totals(rows)
    queued = [row for row in rows if row.reason is None]
    complete = len(rows) == audience
    scale = Decimal(audience) / len(rows) if rows else Decimal(0)
    recipients = figures.recipients if complete else _whole(figures.recipients * scale)
    rest = recipients - figures.recipients

    per_recipient = sorted(row.segments for row in queued)
    segments = Spread(figures.segments, figures.segments, figures.segments)
    if per_recipient and rest:
        segments = Spread(figures.segments + rest * per_recipient[0], _whole(figures.segments * scale),
                          figures.segments + rest * per_recipient[-1])

    costs = [table.cost_for(row.region or "", row.segments) for row in queued]
    priced = sorted(cost for cost in costs if cost is not None)
    sample_cost = sum(priced, Decimal(0))
    cost = Spread(sample_cost, sample_cost, sample_cost)
    if priced and rest:
        cost = Spread(sample_cost + rest * priced[0], sample_cost * scale, sample_cost + rest * priced[-1])
    sent = table.estimate((row.region or "", row.segments) for row in queued)
    extra = dict(refused or {})
    return AudienceEstimate(
        audience=audience + sum(extra.values()),
        sample=len(rows) + sum(extra.values()),
        complete=complete,
        sample_recipients=figures.recipients,
        by_reason=dict(sorted((Counter(figures.by_reason) + Counter(extra)).items())),
        encodings=dict(sorted(Counter(row.encoding for row in queued if row.encoding).items())),
        segments_per_recipient=Spread(per_recipient[0], int(statistics.median_low(per_recipient)), per_recipient[-1])
        if per_recipient else None,
        recipients=recipients,
        segments=segments,
        cost=Spread(*(_cents(amount) for amount in (cost.low, cost.expected, cost.high))),
        nanp_recipients=figures.nanp_recipients,
        unpriced_regions=sent.unpriced_regions,
        pumping_protection_regions=sent.pumping_protection_regions,
    )


def _whole(value: Decimal | int) -> int:
    return int(Decimal(value).to_integral_value(ROUND_HALF_UP))


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)
