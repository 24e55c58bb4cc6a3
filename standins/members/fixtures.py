"""Small, hand-written member sets for unit tests: every phone shape and name script once, readable in a diff.

``SMALL`` is stable: tests may assert on ids, names and counts. ``mobile_e164`` is the number the raw
``mobile`` denotes when the default country is the US (None when it denotes none).
"""

from __future__ import annotations

from datetime import date, datetime

from standins.members.addresses import Address
from standins.members.dataset import MEMBER_TYPES, Member


def _us(city: str, state: str, postal_code: str) -> Address:
    return Address(("100 Main St",), city, state, postal_code, "US")


def _member(
    id: str,
    first: str,
    last: str,
    mobile: str | None,
    e164: str | None,
    shape: str,
    *,
    informal: str | None = None,
    email: str | None = None,
    member_type: str = "REG",
    chapter: str = "NE",
    paid_thru: date = date(2025, 12, 31),
    status: str = "A",
    household_of: str | None = None,
    address: Address | None = None,
) -> Member:
    return Member(
        id=id,
        uniform_id=f"00000000-0000-4000-8000-0000000{id}",
        prefix="",
        first_name=first,
        last_name=last,
        informal_name=informal or first,
        email=email,
        mobile=mobile,
        mobile_e164=e164,
        mobile_shape=shape,
        home_phone=None,
        work_phone=None,
        member_type=member_type,
        chapter=chapter,
        join_date=date(2015, 3, 2),
        paid_thru=paid_thru,
        status=status,
        company=None,
        household_of=household_of,
        last_dues=MEMBER_TYPES[member_type][2],
        updated_on=datetime(2025, 5, 30, 8, 0, 0),
        address=address,
    )


SMALL: tuple[Member, ...] = (
    _member("23145", "Zoë", "Martin", "(415) 555-0134", "+14155550134", "paren", email="zoe.martin@example.org",
            address=_us("Miami", "FL", "33130")),
    _member("23146", "José", "García", "415.555.0135", "+14155550135", "dots", chapter="SCA",
            address=_us("Los Angeles", "CA", "90012")),
    _member("23147", "María", "Núñez", "+1 604 555 0199", "+16045550199", "plus_spaced", chapter="BC",
            address=Address(("800 Robson St",), "Vancouver", "BC", "V6B 1A1", "CA")),
    _member("23148", "Nguyễn", "Trần", "4155550136", "+14155550136", "digits", member_type="STU"),
    _member("23149", "伟", "王", "+44 20 7946 0958", "+442079460958", "uk_landline", chapter="INTL"),
    _member("23150", "Дмитрий", "Иванов", "001 415 555 0137", "+14155550137", "intl_001", informal="Дима"),
    _member("23151", "Sunny", "Kealoha", "415-555-0138 ext. 22", "+14155550138", "extension", informal="Sunny ☀️",
            chapter="HI", address=_us("Honolulu", "HI", "96813")),
    _member("23152", "Robert", "Smith", "", None, "blank", informal="Bob", member_type="RET"),
    _member("23153", "Linda", "Smith", None, None, "null", household_of="23152", member_type="RET"),
    _member("23154", "Mike", "O'Brien", "555-CALL-NOW", None, "letters", chapter="NYC"),
    _member("23155", "Amy", "Lee", "07700 900123", None, "uk_national", chapter="INTL"),
    _member("23156", "Jun", "Lee", "(415) 555-0139", "+14155550139", "paren", household_of=None,
            address=_us("Wichita", "KS", "67202")),
    _member("23157", "Mei", "Lee", "415-555-0139", "+14155550139", "dashes", household_of="23156"),
    _member("23158", "Siobhán", "Ó Súilleabháin", "(617) 555-0140", "+16175550140", "paren", chapter="NE",
            paid_thru=date(2024, 12, 31)),
    _member("23159", "Ángel", "Ramírez", "(305) 555-0141", "+13055550141", "paren", chapter="FL",
            paid_thru=date(2023, 12, 31), member_type="EMR", address=_us("Miami", "FL", "33130")),
    _member("23160", "Øystein", "Sæther", "(212) 555-0142", "+12125550142", "paren", chapter="NYC", status="I",
            address=_us("New York", "NY", "10007")),
)
"""Sixteen members: 12 with a usable mobile, two households sharing a number, two lapsed, one inactive. Seven
have an address: six in a US state (Zoë's Florida and Jun's Kansas are not where their San Francisco number
is), María's in British Columbia; the rest have none."""
