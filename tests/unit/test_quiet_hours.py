"""Quiet hours: the rule table and location resolution against cases worked out by hand (UTC offsets noted)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from libs.common.quiet_hours import Hours, Location, OrgWindow, is_open, next_open, resolve_location, state_text_limit

NY_ORG = "America/New_York"


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def where(e164: str, **address: str) -> Location:
    return resolve_location(e164, org_time_zone=NY_ORG, **address)


def test_new_york_opens_at_8_am_either_side_of_the_spring_dst_change() -> None:
    ny = where("+12125550100")
    # 2026-03-07 is EST (UTC-5): 12:30 UTC is 7:30 am, opening at 13:00 UTC.
    assert not is_open(ny, utc(2026, 3, 7, 12, 30))
    assert next_open(ny, utc(2026, 3, 7, 12, 30)) == utc(2026, 3, 7, 13, 0)
    # 2026-03-08 is EDT (UTC-4) from 2 am: 12:30 UTC is 8:30 am; 11:30 UTC is 7:30 am, opening at 12:00 UTC.
    assert is_open(ny, utc(2026, 3, 8, 12, 30))
    assert next_open(ny, utc(2026, 3, 8, 11, 30)) == utc(2026, 3, 8, 12, 0)


def test_chicago_at_the_autumn_dst_change() -> None:
    kansas = where("+17855550100")
    # 2026-10-31 is CDT (UTC-5): 13:30 UTC is 8:30 am.
    assert is_open(kansas, utc(2026, 10, 31, 13, 30))
    # 2026-11-01 is CST (UTC-6) from 2 am: 13:30 UTC is 7:30 am, opening at 14:00 UTC.
    assert not is_open(kansas, utc(2026, 11, 1, 13, 30))
    assert next_open(kansas, utc(2026, 11, 1, 13, 30)) == utc(2026, 11, 1, 14, 0)
    # 9 pm the evening before the change is 02:00 UTC (CDT); the last minute open is 01:59 UTC.
    assert is_open(kansas, utc(2026, 11, 1, 1, 59))
    assert not is_open(kansas, utc(2026, 11, 1, 2, 0))


def test_texas_sunday_opens_at_noon_and_saturday_at_9() -> None:
    dallas = where("+12145550100")
    assert dallas.states == frozenset({"TX"})
    # Sunday 2026-12-06, CST (UTC-6): 16:00 UTC is 10 am, closed until noon (18:00 UTC).
    assert not is_open(dallas, utc(2026, 12, 6, 16, 0))
    assert next_open(dallas, utc(2026, 12, 6, 16, 0)) == utc(2026, 12, 6, 18, 0)
    # Saturday 2026-12-05 10 am is open; 8:30 am is not (Texas opens at 9, not the federal 8).
    assert is_open(dallas, utc(2026, 12, 5, 16, 0))
    assert not is_open(dallas, utc(2026, 12, 5, 14, 30))
    # Sunday 8:59 pm is open; 9 pm closes until Monday 9 am (15:00 UTC).
    assert is_open(dallas, utc(2026, 12, 7, 2, 59))
    assert next_open(dallas, utc(2026, 12, 7, 3, 0)) == utc(2026, 12, 7, 15, 0)


def test_an_oklahoma_area_code_with_a_kansas_address_takes_oklahomas_rules() -> None:
    member = where("+19185550100", address_state="KS", address_time_zone="America/Chicago")
    assert member.states == frozenset({"KS", "OK"}) and member.source == "address"
    # 8:30 pm CST (02:30 UTC next day): past Oklahoma's 8 pm, inside the federal 9 pm.
    assert not is_open(member, utc(2026, 12, 3, 2, 30))
    assert state_text_limit(member) == 3
    kansan = where("+17855550100", address_state="KS", address_time_zone="America/Chicago")
    assert is_open(kansan, utc(2026, 12, 3, 2, 30))
    assert state_text_limit(kansan) is None


def test_alaska_must_be_open_in_both_of_its_zones() -> None:
    alaska = where("+19075550100")
    assert set(alaska.time_zones) == {"America/Anchorage", "America/Adak"}
    # 2026-12-02 17:30 UTC: Anchorage (UTC-9) 8:30 am, Adak (UTC-10) 7:30 am: closed until Adak's 8 am.
    assert not is_open(alaska, utc(2026, 12, 2, 17, 30))
    assert next_open(alaska, utc(2026, 12, 2, 17, 30)) == utc(2026, 12, 2, 18, 0)
    # 05:59 UTC is Anchorage's 8:59 pm; 06:00 UTC its 9 pm, and Adak (8 pm) does not keep it open.
    assert is_open(alaska, utc(2026, 12, 3, 5, 59))
    assert not is_open(alaska, utc(2026, 12, 3, 6, 0))


def test_hawaii_keeps_utc_minus_10_all_year() -> None:
    hawaii = where("+18085550100")
    assert hawaii.time_zones == ("Pacific/Honolulu",)
    for month in (1, 7):  # no DST: 8 am is 18:00 UTC in winter and summer
        assert not is_open(hawaii, utc(2026, month, 15, 17, 59))
        assert is_open(hawaii, utc(2026, month, 15, 18, 0))


def test_florida_closes_at_8_pm() -> None:
    miami = where("+13055550100")
    assert is_open(miami, utc(2026, 12, 3, 0, 59))  # 7:59 pm EST
    assert next_open(miami, utc(2026, 12, 3, 1, 0)) == utc(2026, 12, 3, 13, 0)
    assert state_text_limit(miami) == 3


def test_the_organisation_only_tightens_hours_days_and_holidays() -> None:
    ny = where("+12125550100")
    late_start = OrgWindow(hours=Hours(10 * 60, 17 * 60))
    assert not is_open(ny, utc(2026, 12, 2, 14, 30), late_start)  # 9:30 am EST
    assert next_open(ny, utc(2026, 12, 2, 14, 30), late_start) == utc(2026, 12, 2, 15, 0)
    wide = OrgWindow(hours=Hours(6 * 60, 23 * 60))  # wider than the law: the law still holds
    assert not is_open(ny, utc(2026, 12, 2, 12, 30), wide)
    weekdays = OrgWindow(days=frozenset(range(5)))
    assert next_open(ny, utc(2026, 12, 5, 15, 0), weekdays) == utc(2026, 12, 7, 13, 0)  # Saturday -> Monday 8 am
    holiday = OrgWindow(holidays=frozenset({date(2026, 12, 25)}))
    assert next_open(ny, utc(2026, 12, 25, 15, 0), holiday) == utc(2026, 12, 26, 13, 0)


def test_a_window_that_never_opens_has_no_next_opening() -> None:
    closed = OrgWindow(days=frozenset())
    assert next_open(where("+12125550100"), utc(2026, 12, 2, 15, 0), closed) is None


@pytest.mark.parametrize("e164", ["+18885550101", "+447700900123"])
def test_numbers_without_a_place_take_the_organisations_zone(e164: str) -> None:
    location = where(e164)
    assert (location.time_zones, location.states, location.source) == ((NY_ORG,), frozenset(), "organisation")


def test_the_address_zone_wins_and_a_bad_one_is_ignored() -> None:
    moved = where("+12125550100", address_state="ca", address_time_zone="America/Los_Angeles")
    assert moved.time_zones == ("America/Los_Angeles",) and moved.states == frozenset({"CA", "NY"})
    typo = where("+12125550100", address_time_zone="America/Nowhere")
    assert typo.time_zones == ("America/New_York",) and typo.source == "area_code"


def test_a_city_description_names_its_state() -> None:
    assert where("+12135550100").states == frozenset({"CA"})  # the geocoder says "Los Angeles, CA"


def test_the_area_code_table_agrees_with_the_installed_geocoder() -> None:
    from libs.common.area_code_states import AREA_CODE_STATES, from_geocoder

    assert from_geocoder() == dict(AREA_CODE_STATES)  # else: python -m libs.common.area_code_states, and paste


def test_a_canadian_number_has_its_zone_and_province_and_no_state_rule() -> None:
    toronto = where("+14165550100")
    assert (toronto.time_zones, toronto.states) == (("America/Toronto",), frozenset({"ON"}))
    assert state_text_limit(toronto) is None


def test_an_address_state_alone_gives_every_zone_of_the_state() -> None:
    moved = where("+14155550100", address_state="fl")  # a San Francisco number, a Florida address
    assert moved.source == "address" and set(moved.time_zones) == {"America/New_York", "America/Chicago"}
    assert moved.states == frozenset({"FL", "CA"})
    # 7:30 pm Eastern is 4:30 pm in San Francisco, but the member is in Florida: held until 8 am Central,
    # when the window is open in the panhandle too (14:00 UTC; 8 am Eastern, 13:00 UTC, is not enough).
    evening = utc(2026, 12, 3, 0, 30)
    assert not is_open(moved, utc(2026, 12, 3, 1, 0))
    assert is_open(moved, evening)
    assert next_open(moved, utc(2026, 12, 3, 1, 0)) == utc(2026, 12, 3, 14, 0)


def test_an_oklahoma_area_code_with_a_kansas_address_closes_at_oklahomas_8_pm() -> None:
    member = where("+14055550100", address_state="KS")  # Oklahoma City number, Kansas address, no zone
    assert member.states == frozenset({"KS", "OK"}) and set(member.time_zones) == {"America/Chicago",
                                                                                   "America/Denver"}
    assert is_open(member, utc(2026, 12, 3, 1, 59))  # 7:59 pm CST
    assert not is_open(member, utc(2026, 12, 3, 2, 0))  # 8 pm CST: Oklahoma's close, though Kansas allows 9 pm
    assert state_text_limit(member) == 3


def test_a_florida_address_with_a_new_york_number_closes_at_8_pm_eastern() -> None:
    member = where("+12125550100", address_state="FL")
    assert is_open(member, utc(2026, 12, 3, 0, 59))  # 7:59 pm EST
    assert not is_open(member, utc(2026, 12, 3, 1, 0))  # 8 pm EST: Florida's close, not New York's 9 pm
    assert state_text_limit(member) == 3


@pytest.mark.parametrize("state", ["Calif.", "ZZ", "", "ON"])
def test_a_state_that_is_not_a_us_state_is_no_address(state: str) -> None:
    member = where("+12125550100", address_state=state)
    assert (member.source, member.time_zones, member.states) == ("area_code", ("America/New_York",),
                                                                 frozenset({"NY"}))
