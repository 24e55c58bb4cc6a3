"""Members' mailing addresses, as an AMS holds them: a city, a state code and a ZIP code, by chapter.

A chapter is a region, and a member's address is in one of its states; where the member's mobile has an area
code of one of those states, the address is mostly in that state, as people live where their number is. The
rest moved and kept their number, so their address and area code name different states (what the quiet-hours
rules must handle). A few members have no address, or one without a state; Canadian chapters live in their
province, the international chapter abroad (or, for some, in the US).

Cities are real, with a real ZIP code of each; states that span two time zones have a city in each (El
Paso and Dallas, Pensacola and Miami). Street lines are made up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from standins.members.draw import below, pick


@dataclass(frozen=True, slots=True)
class Address:
    """One address as iMIS's ``AddressData`` holds it: ``state`` is ``CountrySubEntityCode`` ("" if none)."""

    lines: tuple[str, ...]
    city: str
    state: str
    postal_code: str
    country_code: str  # ISO 3166-1 alpha-2


# state -> (city, ZIP code) choices
_US_CITIES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "AL": (("Birmingham", "35203"), ("Mobile", "36602")), "AK": (("Anchorage", "99501"), ("Juneau", "99801"),
                                                                 ("Fairbanks", "99701"), ("Adak", "99546")),
    "AZ": (("Phoenix", "85004"), ("Tucson", "85701"), ("Window Rock", "86515")),
    "AR": (("Little Rock", "72201"),), "CA": (("Los Angeles", "90012"), ("San Francisco", "94103"),
                                             ("San Diego", "92101"), ("Sacramento", "95814"), ("Fresno", "93721")),
    "CO": (("Denver", "80202"), ("Boulder", "80302")), "CT": (("Hartford", "06103"), ("New Haven", "06510")),
    "DE": (("Wilmington", "19801"),), "DC": (("Washington", "20001"),),
    "FL": (("Miami", "33130"), ("Orlando", "32801"), ("Tampa", "33602"), ("Tallahassee", "32301"),
           ("Pensacola", "32502")),
    "GA": (("Atlanta", "30303"), ("Savannah", "31401")), "HI": (("Honolulu", "96813"), ("Hilo", "96720")),
    "ID": (("Boise", "83702"), ("Coeur d'Alene", "83814")), "IL": (("Chicago", "60602"), ("Springfield", "62701")),
    "IN": (("Indianapolis", "46204"), ("Gary", "46402")), "IA": (("Des Moines", "50309"),),
    "KS": (("Wichita", "67202"), ("Topeka", "66603"), ("Goodland", "67735")),
    "KY": (("Louisville", "40202"), ("Bowling Green", "42101")), "LA": (("New Orleans", "70112"),),
    "ME": (("Portland", "04101"),), "MD": (("Baltimore", "21202"), ("Bethesda", "20814"), ("Annapolis", "21401")),
    "MA": (("Boston", "02108"), ("Worcester", "01608")), "MI": (("Detroit", "48226"), ("Iron Mountain", "49801")),
    "MN": (("Minneapolis", "55401"), ("Saint Paul", "55102")), "MS": (("Jackson", "39201"),),
    "MO": (("Saint Louis", "63101"), ("Kansas City", "64105")), "MT": (("Helena", "59601"),),
    "NE": (("Omaha", "68102"), ("Scottsbluff", "69361")), "NV": (("Las Vegas", "89101"), ("Reno", "89501")),
    "NH": (("Manchester", "03101"),), "NJ": (("Newark", "07102"), ("Princeton", "08540")),
    "NM": (("Albuquerque", "87102"),), "NY": (("New York", "10007"), ("Brooklyn", "11201"), ("Buffalo", "14202"),
                                              ("Albany", "12207")),
    "NC": (("Charlotte", "28202"), ("Raleigh", "27601")), "ND": (("Bismarck", "58501"), ("Dickinson", "58601")),
    "OH": (("Columbus", "43215"), ("Cleveland", "44113")),
    "OK": (("Oklahoma City", "73102"), ("Tulsa", "74103")), "OR": (("Portland", "97204"), ("Ontario", "97914")),
    "PA": (("Philadelphia", "19107"), ("Pittsburgh", "15222")), "RI": (("Providence", "02903"),),
    "SC": (("Charleston", "29401"),), "SD": (("Sioux Falls", "57104"), ("Rapid City", "57701")),
    "TN": (("Nashville", "37203"), ("Knoxville", "37902"), ("Memphis", "38103")),
    "TX": (("Houston", "77002"), ("Dallas", "75201"), ("Austin", "78701"), ("San Antonio", "78205"),
           ("El Paso", "79901")),
    "UT": (("Salt Lake City", "84111"),), "VT": (("Burlington", "05401"),),
    "VA": (("Richmond", "23219"), ("Arlington", "22201")), "WA": (("Seattle", "98104"), ("Spokane", "99201")),
    "WV": (("Charleston", "25301"),), "WI": (("Milwaukee", "53202"), ("Madison", "53703")),
    "WY": (("Cheyenne", "82001"),), "PR": (("San Juan", "00901"),),
}
# chapter -> its states, the more populous repeated (drawn uniformly)
_REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "NE": ("MA", "MA", "MA", "CT", "CT", "RI", "NH", "VT", "ME"),
    "NYC": ("NY", "NY", "NY", "NY", "NJ"),
    "MA": ("PA", "PA", "MD", "MD", "MD", "VA", "VA", "NJ", "DE", "DC"),
    "SE": ("GA", "GA", "NC", "NC", "TN", "TN", "SC", "AL", "KY", "MS"),
    "FL": ("FL",),
    "GL": ("IL", "IL", "OH", "OH", "MI", "MI", "IN", "WI"),
    "MW": ("MN", "MO", "MO", "IA", "KS", "KS", "NE", "OK", "OK", "ND", "SD"),
    "TX": ("TX",),
    "MTN": ("CO", "CO", "UT", "ID", "MT", "WY"),
    "SW": ("AZ", "AZ", "NM", "NV", "NV", "OK"),
    "NCA": ("CA",), "SCA": ("CA",), "PNW": ("WA", "WA", "OR"),
    "AK": ("AK",), "HI": ("HI",), "PR": ("PR",),
}
# province -> (city, postal code) choices, for the Canadian chapters
_CANADA: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "ON": (("Toronto", "M5H 2N2"), ("Ottawa", "K1P 1J1")), "QC": (("Montréal", "H2Y 1C6"), ("Québec", "G1R 4P5")),
    "BC": (("Vancouver", "V6B 1A1"), ("Victoria", "V8W 1P6")),
}
# country -> (city, subdivision code as iMIS would hold it, postal code)
_ABROAD: Final[dict[str, tuple[str, str, str]]] = {
    "GB": ("London", "", "EC1A 1BB"), "AU": ("Sydney", "NSW", "2000"), "MX": ("Ciudad de México", "CMX", "06000"),
    "DE": ("Berlin", "", "10117"), "JP": ("Tokyo", "", "100-0005"), "IE": ("Dublin", "", "D02 X285"),
}
_COUNTRY_OF_PREFIX: Final = {"+44": "GB", "+61": "AU", "+52": "MX"}
_STREETS: Final = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "2nd St", "Park Ave", "Lake Rd", "Elm St",
                   "Washington Blvd", "Church St", "Mill Rd", "Ridge Way")
# The US area codes of standins/members/phones.py and their states, so a stand-in needs no geocoder.
_AREA_STATES: Final = {
    "201": "NJ", "202": "DC", "203": "CT", "205": "AL", "206": "WA", "207": "ME", "212": "NY", "213": "CA",
    "214": "TX", "215": "PA", "216": "OH", "217": "IL", "301": "MD", "303": "CO", "304": "WV", "305": "FL",
    "310": "CA", "312": "IL", "313": "MI", "314": "MO", "315": "NY", "401": "RI", "402": "NE", "404": "GA",
    "405": "OK", "406": "MT", "407": "FL", "408": "CA", "410": "MD", "412": "PA", "414": "WI", "415": "CA",
    "503": "OR", "504": "LA", "505": "NM", "512": "TX", "602": "AZ", "603": "NH", "608": "WI", "612": "MN",
    "614": "OH", "615": "TN", "617": "MA", "702": "NV", "703": "VA", "704": "NC", "713": "TX", "720": "CO",
    "808": "HI", "816": "MO", "907": "AK", "916": "CA", "919": "NC", "971": "OR",
}
NO_ADDRESS_SHARE: Final = 0.04
NO_STATE_SHARE: Final = 0.005  # an address typed without its state
STAYED_SHARE: Final = 0.85  # of members whose area code is in their chapter's region: living in that state


def draw_address(rng: random.Random, chapter: str, mobile_e164: str | None) -> Address | None:
    """The address of a member of ``chapter`` with that mobile, drawn from ``rng`` (a stream of its own)."""
    if rng.random() < NO_ADDRESS_SHARE:
        return None
    lines: tuple[str, ...] = (f"{below(rng, 1, 9900)} {pick(rng, _STREETS)}",)
    if rng.random() < 0.15:
        lines += (f"Apt {below(rng, 1, 40)}{pick(rng, 'ABCD')}",)
    if chapter in _CANADA:
        city, postal = pick(rng, _CANADA[chapter])
        return Address(lines, city, chapter, postal, "CA")
    region = _REGIONS.get(chapter) or (tuple(_US_CITIES) if rng.random() < 0.2 else None)
    if region is None:  # the international chapter, mostly abroad: where the mobile's country code says
        country = _COUNTRY_OF_PREFIX.get((mobile_e164 or "")[:3]) or pick(rng, tuple(_ABROAD))
        city, subdivision, postal = _ABROAD[country]
        return Address(lines, city, subdivision, postal, country)
    e164 = mobile_e164 or ""
    area_state = _AREA_STATES.get(e164[2:5]) if e164.startswith("+1") else None
    stayed = area_state is not None and area_state in region and rng.random() < STAYED_SHARE
    state = area_state if stayed and area_state is not None else pick(rng, region)
    city, postal = pick(rng, _US_CITIES[state])
    return Address(lines, city, "" if rng.random() < NO_STATE_SHARE else state, postal, "US")
