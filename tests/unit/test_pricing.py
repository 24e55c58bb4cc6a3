"""Cost estimates: Decimal arithmetic, the failed-message fee, unpriced and pumping-protection flags."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.common.pricing import DEFAULT_PRICES, FAILED_MESSAGE_FEE, PriceTable


@pytest.mark.parametrize(
    ("region", "segments", "cost"),
    [("US", 1, "0.0083"), ("US", 3, "0.0249"), ("CA", 2, "0.0166"), ("US", 11, "0.0913")],
)
def test_cost_is_segments_times_the_destination_price(region: str, segments: int, cost: str) -> None:
    assert PriceTable().cost_for(region, segments) == Decimal(cost)


def test_a_destination_without_price_has_no_cost() -> None:
    assert PriceTable().cost_for("ZW", 1) is None


def test_us_and_canada_are_seeded_with_the_toll_free_price() -> None:
    assert DEFAULT_PRICES["US"] == DEFAULT_PRICES["CA"] == Decimal("0.0083")
    assert FAILED_MESSAGE_FEE == Decimal("0.001")


def test_estimate_totals_segments_fees_and_flags() -> None:
    recipients = [("US", 1)] * 1000 + [("US", 2)] * 10 + [("CA", 1)] * 5 + [("GB", 1)] * 2 + [("ZW", 3)]
    estimate = PriceTable().estimate(recipients, expected_failures=7)
    assert estimate.recipients == 1018
    assert estimate.segments == 1000 + 20 + 5 + 2 + 3
    assert estimate.send_cost == Decimal("0.0083") * 1025 + Decimal("0.0524") * 2
    assert estimate.failed_fee == Decimal("0.007")
    assert estimate.total == estimate.send_cost + estimate.failed_fee
    assert estimate.unpriced_regions == ("ZW",)
    assert estimate.pumping_protection_regions == ("GB", "ZW")
    assert estimate.pumping_protection_may_apply


def test_an_all_us_ca_audience_raises_no_pumping_flag() -> None:
    estimate = PriceTable().estimate([("US", 1), ("CA", 1)])
    assert not estimate.pumping_protection_may_apply
    assert estimate.total == Decimal("0.0166")


def test_money_stays_exact() -> None:
    estimate = PriceTable().estimate([("US", 1)] * 100_000)
    assert estimate.total == Decimal("830.0000")
    assert isinstance(estimate.total, Decimal)


def test_overrides_replace_and_add_prices_without_touching_the_original() -> None:
    table = PriceTable().with_overrides({"US": "0.0079", "MX": Decimal("0.0450")})
    assert table.cost_for("US", 2) == Decimal("0.0158")
    assert table.cost_for("MX", 1) == Decimal("0.0450")
    assert PriceTable().cost_for("US", 1) == Decimal("0.0083")


@pytest.mark.parametrize(
    ("prices", "error"),
    [
        ({"US": 0.0083}, TypeError),
        ({"US": "-0.01"}, ValueError),
        ({"US": "NaN"}, ValueError),
        ({"US": "cheap"}, ValueError),
        ({"usa": "0.01"}, ValueError),
        ({"us": "0.01"}, ValueError),
    ],
)
def test_bad_overrides_are_refused(prices: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        PriceTable().with_overrides(prices)  # type: ignore[arg-type]


def test_negative_expected_failures_are_refused() -> None:
    with pytest.raises(ValueError):
        PriceTable().estimate([], expected_failures=-1)
