"""The state table and the normalisation of a typed state: good, bad and non-US values."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from libs.common.us_states import STATE_NAMES, STATE_ZONES, us_state


def test_every_state_dc_and_territory_has_real_zones() -> None:
    assert len(STATE_ZONES) == 50 + 1 + 5
    for code, zones in STATE_ZONES.items():
        assert zones and len(set(zones)) == len(zones), code
        for zone in zones:
            ZoneInfo(zone)  # raises for a zone tzdata does not know
    assert set(STATE_NAMES.values()) == set(STATE_ZONES)


@pytest.mark.parametrize(("state", "zones"), [
    ("FL", {"America/New_York", "America/Chicago"}),
    ("TX", {"America/Chicago", "America/Denver"}),
    ("AK", {"America/Anchorage", "America/Adak"}),
    ("HI", {"Pacific/Honolulu"}),
    ("OK", {"America/Chicago"}),
    ("MD", {"America/New_York"}),
])
def test_a_state_spans_every_zone_it_has(state: str, zones: set[str]) -> None:
    assert set(STATE_ZONES[state]) == zones


@pytest.mark.parametrize(("typed", "code"), [
    ("FL", "FL"), ("fl", "FL"), (" Ok ", "OK"), ("Florida", "FL"), ("new  york", "NY"), ("PR", "PR"),
    ("District of Columbia", "DC"),
])
def test_good_values_become_the_code(typed: str, code: str) -> None:
    assert us_state(typed) == code


@pytest.mark.parametrize("typed", [None, "", "  ", "Calif.", "ZZ", "F L", "FLA", "ON", "QC", "NSW", "AE", "12"])
def test_bad_and_non_us_values_are_no_state(typed: str | None) -> None:
    assert us_state(typed) is None


def test_a_country_other_than_the_us_is_no_state() -> None:
    assert us_state("TX", country="US") == "TX" and us_state("TX", country=" usa ") == "TX"
    assert us_state("TX", country="") == "TX"  # a blank country says nothing
    assert us_state("CO", country="MX") is None and us_state("WA", country="AU") is None
