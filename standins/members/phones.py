"""Phone numbers as staff type them into an AMS: many shapes, some unusable, none normalised.

iMIS stores numbers exactly as typed (docs/imis.md#typed-values), so the audience importer must cope with every shape
here. Each generated value comes with the E.164 number it denotes (or None when it denotes none), so
tests can check the importer's normalisation against a known answer.

Numbers stay inside fictional or reserved ranges where one exists: NANP ``555`` exchanges (the US example
number +1 201 555 0123 is one), Ofcom's drama ranges (020 7946 0xxx, 07700 900xxx) and Australia's
0491 570 xxx.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from standins.members.draw import below, pick

# Area codes from the US and Canada (CA ones: 416, 514, 604, 403, 613, 902, 306).
AREA_CODES: tuple[str, ...] = (
    "201", "202", "203", "205", "206", "207", "212", "213", "214", "215", "216", "217", "301", "303",
    "304", "305", "310", "312", "313", "314", "315", "401", "402", "404", "405", "406", "407", "408",
    "410", "412", "414", "415", "503", "504", "505", "512", "602", "603", "608", "612", "614", "615",
    "617", "702", "703", "704", "713", "720", "808", "816", "907", "916", "919", "971", "416", "514",
    "604", "403", "613", "902", "306",
)


@dataclass(frozen=True, slots=True)
class TypedPhone:
    """What staff typed (``raw``; None is a NULL column) and the E.164 number it means, if any."""

    raw: str | None
    e164: str | None
    shape: str


def _nanp(rng: random.Random) -> tuple[str, str]:
    """A NANP number in the 555 exchange: (area code, 4-digit line)."""
    return pick(rng, AREA_CODES), f"{below(rng, 10000):04d}"


_US_SHAPES: tuple[tuple[str, str], ...] = (
    ("paren", "({a}) 555-{n}"),
    ("dots", "{a}.555.{n}"),
    ("dashes", "{a}-555-{n}"),
    ("digits", "{a}555{n}"),
    ("plus_spaced", "+1 {a} 555 {n}"),
    ("one_dashes", "1-{a}-555-{n}"),
    ("e164", "+1{a}555{n}"),
    ("spaces", "{a} 555 {n}"),
    ("paren_tight", "({a})555-{n}"),
    ("one_paren", "1 ({a}) 555-{n}"),
    ("intl_001", "001 {a} 555 {n}"),
    ("trailing_space", " {a}-555-{n} "),
)


def _us_typed(rng: random.Random, area: str, line: str) -> TypedPhone:
    shape, template = pick(rng, _US_SHAPES)
    return TypedPhone(template.format(a=area, n=line), f"+1{area}555{line}", shape)


def _us(rng: random.Random) -> TypedPhone:
    area, line = _nanp(rng)
    return _us_typed(rng, area, line)


def _extension(rng: random.Random) -> TypedPhone:
    area, line = _nanp(rng)
    ext = str(below(rng, 1, 9999))
    raw = pick(
        rng,
        (f"{area}-555-{line} ext. {ext}", f"({area}) 555-{line} x{ext}", f"{area}.555.{line} #{ext}",
         f"+1 {area} 555 {line};ext={ext}")
    )
    return TypedPhone(raw, f"+1{area}555{line}", "extension")


def _international(rng: random.Random) -> TypedPhone:
    n = below(rng, 1000)
    kind = below(rng, 7)
    if kind == 0:
        return TypedPhone(f"+44 20 7946 0{n:03d}", f"+44207946{n:04d}", "uk_landline")
    if kind == 1:
        return TypedPhone(f"+44 7700 900{n:03d}", f"+447700900{n:03d}", "uk_mobile")
    if kind == 2:
        # National UK form without the country code: only right if the importer knows the member is in the UK.
        return TypedPhone(f"07700 900{n:03d}", None, "uk_national")
    if kind == 3:
        return TypedPhone(f"0044 7700 900{n:03d}", f"+447700900{n:03d}", "uk_0044")
    if kind == 4:
        return TypedPhone(f"011 44 7700 900{n:03d}", f"+447700900{n:03d}", "uk_011")
    if kind == 5:
        return TypedPhone(f"+61 491 570 {n:03d}", f"+61491570{n:03d}", "au_mobile")
    return TypedPhone(f"+52 55 5555 {n:04d}", f"+52555555{n:04d}", "mx")


_UNUSABLE: tuple[str, ...] = (
    "N/A", "none", "n/a", "see home phone", "TBD", "0000000000", "555-CALL-NOW", "1-800-FLOWERS",
    "call office", "-", "?", "unlisted",
)


def _unusable(rng: random.Random) -> TypedPhone:
    if rng.random() < 0.3:
        area, line = _nanp(rng)
        # Typos: a digit short, or the area code left off.
        raw = pick(rng, (f"{area}-555-{line[:3]}", f"555-{line}", f"{area}-555-{line}9"))
        return TypedPhone(raw, None, "typo")
    return TypedPhone(pick(rng, _UNUSABLE), None, "letters")


def _blank(rng: random.Random) -> TypedPhone:
    return TypedPhone(pick(rng, ("", "", " ")), None, "blank")


def _null(rng: random.Random) -> TypedPhone:
    return TypedPhone(None, None, "null")


# (maker, share of mobile values)
_MOBILE_MIX = (
    (_us, 74.0),
    (_extension, 3.0),
    (_international, 6.0),
    (_unusable, 2.0),
    (_blank, 5.0),
    (_null, 10.0),
)
_MAKERS = tuple(m for m, _ in _MOBILE_MIX)
_CUMULATIVE = tuple(accumulate(w for _, w in _MOBILE_MIX))


def typed_mobile(rng: random.Random) -> TypedPhone:
    """One mobile value drawn from the mix above (about 80 % usable)."""
    return _MAKERS[bisect(_CUMULATIVE, rng.random() * _CUMULATIVE[-1])](rng)


def typed_landline(rng: random.Random) -> TypedPhone:
    """A home or work number: mostly US shapes, often NULL."""
    if rng.random() < 0.45:
        return _null(rng)
    return _us(rng) if rng.random() < 0.9 else _extension(rng)


def retype(phone: TypedPhone, rng: random.Random) -> TypedPhone:
    """The same number as a second person in the household typed it: another shape for NANP numbers."""
    e164 = phone.e164
    if e164 is None or not e164.startswith("+1") or len(e164) != 12:
        return phone
    return _us_typed(rng, e164[2:5], e164[8:])
