"""US states (with DC and the territories) as data: each one's two-letter code and every time zone it spans. Pure.

A member's address says their state; iMIS has no time-zone field, and an address alone does not say which side
of a zone line the member lives on. So a state's zones are *all* the zones it spans (Florida: Eastern and the
panhandle's Central; Texas: Central and El Paso's Mountain), and the quiet-hours window must be open in every
one of them (:func:`libs.common.quiet_hours.resolve_location` applies this table; nothing else does, so the
dispatcher and the send planner agree). The audience stores only the state the source gave, never a zone
derived from it.

:func:`us_state` turns what a source holds (``"fl"``, ``" FL "``, ``"Florida"``) into the code, and anything
else (``"Calif."``, ``"ZZ"``, ``""``, a Canadian province, a state of a country other than the US) into None:
bad address data never fails a run, the area code decides instead.

    >>> us_state(" fl "), us_state("Florida"), us_state("Calif."), us_state("ON"), us_state("TX", country="MX")
    ('FL', 'FL', None, None, None)
    >>> STATE_ZONES["TX"]
    ('America/Chicago', 'America/Denver')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["STATE_NAMES", "STATE_ZONES", "us_state"]

_E, _C, _M, _P = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"

# Every zone each state spans, its main zone first. Where a small part of a state keeps another zone, that
# zone is listed too (the stricter reading): the Florida panhandle west of the Apalachicola, west Texas,
# western Kansas and Nebraska, north Idaho, eastern Oregon, West Wendover (Nevada), the Navajo Nation
# (Arizona, on daylight time), the western Dakotas, northwest and southwest Indiana, western Kentucky,
# Michigan's Menominee border counties, middle and west Tennessee, the Aleutians (Alaska).
STATE_ZONES: Final[Mapping[str, tuple[str, ...]]] = {
    "AL": (_C,), "AK": ("America/Anchorage", "America/Adak"), "AZ": ("America/Phoenix", _M), "AR": (_C,),
    "CA": (_P,), "CO": (_M,), "CT": (_E,), "DE": (_E,), "DC": (_E,), "FL": (_E, _C), "GA": (_E,),
    "HI": ("Pacific/Honolulu",), "ID": ("America/Boise", _P), "IL": (_C,),
    "IN": ("America/Indiana/Indianapolis", _C), "IA": (_C,), "KS": (_C, _M), "KY": (_E, _C), "LA": (_C,),
    "ME": (_E,), "MD": (_E,), "MA": (_E,), "MI": ("America/Detroit", _C), "MN": (_C,), "MS": (_C,), "MO": (_C,),
    "MT": (_M,), "NE": (_C, _M), "NV": (_P, _M), "NH": (_E,), "NJ": (_E,), "NM": (_M,), "NY": (_E,), "NC": (_E,),
    "ND": (_C, _M), "OH": (_E,), "OK": (_C,), "OR": (_P, "America/Boise"), "PA": (_E,), "RI": (_E,), "SC": (_E,),
    "SD": (_C, _M), "TN": (_C, _E), "TX": (_C, _M), "UT": (_M,), "VT": (_E,), "VA": (_E,), "WA": (_P,),
    "WV": (_E,), "WI": (_C,), "WY": (_M,),
    "PR": ("America/Puerto_Rico",), "VI": ("America/St_Thomas",), "GU": ("Pacific/Guam",),
    "AS": ("Pacific/Pago_Pago",), "MP": ("Pacific/Saipan",),
}

STATE_NAMES: Final[Mapping[str, str]] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
    "U.S. Virgin Islands": "VI", "Guam": "GU", "American Samoa": "AS", "Northern Mariana Islands": "MP",
}
_BY_NAME: Final = {name.casefold(): code for name, code in STATE_NAMES.items()}
# What sources write for the United States in a country field (iMIS: CountryCode "US"); blank means unstated.
_US: Final = frozenset({"", "us", "usa", "u.s.", "u.s.a.", "united states", "united states of america"})


def us_state(value: str | None, *, country: str | None = None) -> str | None:
    """The two-letter code of the US state (or DC, or a territory) ``value`` names, else None (never raises).
    With a ``country`` other than the US, None whatever the state field says."""
    if value is None or (country is not None and country.strip().casefold() not in _US):
        return None
    text = value.strip()
    code = text.upper()
    if code in STATE_ZONES:
        return code
    return _BY_NAME.get(" ".join(text.split()).casefold())
