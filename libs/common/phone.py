"""Phone numbers to E.164, with a reason code instead of a guess.

    >>> normalise("(415) 555-2671")
    Normalised(e164='+14155552671', region='US', number_type='fixed_line_or_mobile', warnings=())
    >>> normalise("+44 20 7234 3456").region            # a leading + wins over the default prefix
    'GB'
    >>> normalise("415 555 2671 ext. 12").reason
    'phone_has_extension'

Rules, in order:

1. Blank -> ``phone_empty``. An extension (``ext. 12``, ``x12``, ``#12``, ``,12``) -> ``phone_has_extension``;
   any other letter -> ``phone_has_letters`` (vanity numbers are not guessed); characters other than
   digits, spaces and ``+ - . ( ) /`` -> ``phone_invalid_characters``; a ``+`` that does not lead -> same.
2. A number starting with ``+`` is international. So is one starting with the default country's own
   international prefix (``00`` in most of Europe, ``0011`` in Australia, ``011`` in NANP), and under
   +1 also one starting with ``00``, which no NANP number does. Under +44, ``011`` stays national
   (0118 is Reading). Anything else is a national number of the default prefix's main country.
3. phonenumbers then decides: ``phone_invalid_country_code``, ``phone_too_short``, ``phone_too_long``,
   ``phone_not_possible`` (a length no number of that country has, or a local number without its area
   code) and ``phone_invalid_for_region`` (possible length, but no such number range).
4. A valid number is returned with warnings for types that probably cannot receive SMS:
   ``phone_fixed_line`` where the metadata knows the number is fixed-line (US and CA numbers are
   ``fixed_line_or_mobile`` and get no warning), ``phone_unlikely_sms`` for premium-rate, shared-cost,
   pager, UAN and voicemail numbers.

Results are immutable and cached per (raw, prefix), because member lists repeat numbers (households,
members of several chapters). Uncached, a number costs about 15 us: NANP numbers in their usual
shapes skip phonenumbers.parse, and number types are matched against patterns compiled once per
region. tests/unit/test_phone.py holds both to phonenumbers' own answers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType, ValidationResult

from libs.common.errors import ConfigurationError

__all__ = ["Normalised", "Rejected", "dedupe", "normalise", "region_for_prefix"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Normalised:
    """A valid number: ``e164`` like ``+14155552671``, ``region`` an ISO 3166 code (``001`` if non-geographic)."""

    e164: str
    region: str
    number_type: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A number that cannot be used; ``message`` is for people and never repeats the number."""

    reason: str
    message: str


_EXTENSION = re.compile(r"(?:e?xt(?:ension|n)?\.?|x|#|[,;]+)\s*\d+\s*$", re.IGNORECASE)
_PUNCTUATION = frozenset(" \t\u00a0-\u2010\u2011\u2012\u2013\u2014.()/")
_PLAIN = re.compile(r"\+?[0-9 ().\-/]+")
_DROP_PUNCTUATION = str.maketrans("", "", "+ ().-/")
_TYPE_NAMES: Final = {
    value: name.lower() for name, value in vars(PhoneNumberType).items() if isinstance(value, int) and name.isupper()
}
_UNLIKELY_SMS: Final = frozenset(
    {
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.PAGER,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
    }
)
_PARSE_REASONS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: "phone_invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "phone_too_short",
    NumberParseException.TOO_SHORT_AFTER_IDD: "phone_too_short",
    NumberParseException.TOO_SHORT_NSN: "phone_too_short",
    NumberParseException.TOO_LONG: "phone_too_long",
}
_POSSIBILITY_REASONS: Final = {
    ValidationResult.INVALID_COUNTRY_CODE: ("phone_invalid_country_code", "no country uses that calling code"),
    ValidationResult.TOO_SHORT: ("phone_too_short", "the number is too short"),
    ValidationResult.TOO_LONG: ("phone_too_long", "the number is too long"),
    ValidationResult.INVALID_LENGTH: ("phone_not_possible", "no number of that country has this length"),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: ("phone_not_possible", "a local number without its area code"),
}
_MESSAGES: Final = {
    "phone_empty": "no phone number",
    "phone_has_extension": "the number has an extension, which SMS cannot reach",
    "phone_has_letters": "the number contains letters",
    "phone_invalid_characters": "the number contains characters other than digits, spaces and + - . ( ) /",
    "phone_invalid_country_code": "no country uses that calling code",
    "phone_too_short": "the number is too short",
    "phone_too_long": "the number is too long",
}


@functools.lru_cache(maxsize=64)
def region_for_prefix(default_country_prefix: str) -> str:
    """Map a calling code such as ``+1`` or ``+44`` to its main region (``US``, ``GB``).

    Raises :class:`ConfigurationError` (``phone_prefix_invalid``) for anything that is not a
    country's calling code; this is an organisation setting, not member data.
    """
    match = re.fullmatch(r"\+?(\d{1,3})", default_country_prefix.strip())
    region = phonenumbers.region_code_for_country_code(int(match.group(1))) if match else "ZZ"
    if region in ("ZZ", "001"):
        raise ConfigurationError(
            "phone_prefix_invalid", f"default country prefix {default_country_prefix!r} is not a country calling code"
        )
    return region


def normalise(raw: str | None, default_country_prefix: str = "+1") -> Normalised | Rejected:
    """Normalise one number as described in the module docstring. Pure; never raises for bad numbers.

    Raises :class:`ConfigurationError` only when ``default_country_prefix`` itself is invalid.
    """
    return _normalise(raw or "", region_for_prefix(default_country_prefix))


def dedupe(items: Iterable[T], key: Callable[[T], Hashable]) -> tuple[list[T], list[T]]:
    """Split ``items`` into the first item per key and the later duplicates, both in input order.

    Use with ``key=lambda member: member.phone.e164`` on normalised numbers only.
    """
    seen: set[Hashable] = set()
    kept: list[T] = []
    duplicates: list[T] = []
    for item in items:
        identity = key(item)
        if identity in seen:
            duplicates.append(item)
        else:
            seen.add(identity)
            kept.append(item)
    return kept, duplicates


@functools.lru_cache(maxsize=1 << 17)
def _normalise(raw: str, region: str) -> Normalised | Rejected:
    text = raw.strip()
    if not text:
        return _rejected("phone_empty")
    if _PLAIN.fullmatch(text):
        number = text.translate(_DROP_PUNCTUATION)
    else:
        diagnosed = _diagnose(text)
        if isinstance(diagnosed, Rejected):
            return diagnosed
        number = diagnosed
    if not number:
        return _rejected("phone_empty")
    nanp = _calling_code(region) == 1
    if text.startswith("+"):
        international: str | None = number
    elif nanp and number.startswith("011"):
        international = number[3:]
    elif nanp and number.startswith("00"):
        international = number[2:]
    else:
        # parse strips the region's own international prefix: 00 in most of Europe, 0011 in Australia.
        international = None
    try:
        parsed = _parse(number, international, region, nanp)
    except NumberParseException as error:
        return _rejected(_PARSE_REASONS.get(error.error_type, "phone_not_possible"))
    possibility = phonenumbers.is_possible_number_with_reason(parsed)
    if possibility in _POSSIBILITY_REASONS:
        return Rejected(*_POSSIBILITY_REASONS[possibility])
    found, number_type = _region_and_type(parsed)
    if number_type == PhoneNumberType.UNKNOWN:
        label = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        return Rejected("phone_invalid_for_region", f"not a valid number for +{parsed.country_code} ({label})")
    warnings: tuple[str, ...] = ()
    if number_type == PhoneNumberType.FIXED_LINE:
        warnings = ("phone_fixed_line",)
    elif number_type in _UNLIKELY_SMS:
        warnings = ("phone_unlikely_sms",)
    return Normalised(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=found or "",
        number_type=_TYPE_NAMES.get(number_type, "unknown"),
        warnings=warnings,
    )


def _diagnose(text: str) -> str | Rejected:
    """The slow path for text that is not plain ASCII digits and punctuation: say why, or return digits."""
    if _EXTENSION.search(text):
        return _rejected("phone_has_extension")
    digits: list[str] = []
    for index, char in enumerate(text):
        if char.isdecimal():
            digits.append(str(int(char)))  # full-width and other scripts' digits to ASCII
        elif char.isalpha():
            return _rejected("phone_has_letters")
        elif char not in _PUNCTUATION and not (char == "+" and index == 0):
            return _rejected("phone_invalid_characters")
    return "".join(digits)


def _parse(number: str, international: str | None, region: str, nanp: bool) -> phonenumbers.PhoneNumber:
    """Parse digits; NANP numbers in their usual shapes are built directly, as parse would build them.

    parse costs ~20 us. For a 10-digit NANP number whose area code starts 2-9 (as every area code does),
    or that number behind a 1, parse strips nothing else, so the result is identical; a unit test
    checks that equality.
    """
    nanp_number = international if international is not None else (number if nanp else None)
    if nanp_number is not None:
        if international is None and len(nanp_number) == 10 and nanp_number[0] in "23456789":
            return phonenumbers.PhoneNumber(country_code=1, national_number=int(nanp_number))
        if len(nanp_number) == 11 and nanp_number[0] == "1" and nanp_number[1] in "23456789":
            return phonenumbers.PhoneNumber(country_code=1, national_number=int(nanp_number[1:]))
    if international is not None:
        return phonenumbers.parse("+" + international, None)
    return phonenumbers.parse(number, region)


def _region_and_type(parsed: phonenumbers.PhoneNumber) -> tuple[str | None, int]:
    """``(region_code_for_number, number_type)`` in one walk over the calling code's regions, not two.

    Follows phonenumbers' region_code_for_number: the only region of the calling code, or the first
    whose leading digits match, or failing that whose number ranges hold the number. number_type is
    UNKNOWN exactly when is_valid_number is False, so this one walk answers validity, type and region.
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(parsed.country_code or 0)
    if not regions:
        return None, PhoneNumberType.UNKNOWN
    national = phonenumbers.national_significant_number(parsed)
    if len(regions) == 1:
        ranges = _ranges(parsed.country_code, regions[0])
        return regions[0], ranges.classify(national) if ranges else PhoneNumberType.UNKNOWN
    for region in regions:
        ranges = _ranges(parsed.country_code, region)
        if ranges is None:
            continue
        if ranges.leading_digits is not None:
            if ranges.leading_digits.match(national):
                return region, ranges.classify(national)
        else:
            number_type = ranges.classify(national)
            if number_type != PhoneNumberType.UNKNOWN:
                return region, number_type
    return None, PhoneNumberType.UNKNOWN


@dataclass(frozen=True, slots=True)
class _Range:
    """One PhoneNumberDesc, compiled: its possible lengths (empty: any) and its number pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def holds(self, national: str) -> bool:
        return (not self.lengths or len(national) in self.lengths) and self.pattern.fullmatch(national) is not None


def _range(desc: phonenumbers.PhoneNumberDesc | None) -> _Range | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _Range(frozenset(desc.possible_length), re.compile(desc.national_number_pattern))


_SPECIAL_TYPES: Final = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


@dataclass(frozen=True, slots=True)
class _RegionRanges:
    """A region's metadata with its patterns compiled once.

    ``classify`` gives the same answer as phonenumbers' number-type check, in the same order (general
    ranges, then the special types, then fixed line / mobile), without its per-call pattern lookups,
    which were half of the time a US number took. tests/unit/test_phone.py checks it against
    phonenumbers.number_type.
    """

    leading_digits: re.Pattern[str] | None
    general: _Range | None
    special: tuple[tuple[_Range, int], ...]
    fixed_line: _Range | None
    mobile: _Range | None
    same_mobile_and_fixed_line: bool

    def classify(self, national: str) -> int:
        if self.general is None or not self.general.holds(national):
            return PhoneNumberType.UNKNOWN
        for candidate, number_type in self.special:
            if candidate.holds(national):
                return number_type
        mobile = self.mobile is not None and not self.same_mobile_and_fixed_line and self.mobile.holds(national)
        if self.fixed_line is not None and self.fixed_line.holds(national):
            if self.same_mobile_and_fixed_line or mobile:
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        return PhoneNumberType.MOBILE if mobile else PhoneNumberType.UNKNOWN


@functools.lru_cache(maxsize=512)
def _ranges(country_code: int, region: str) -> _RegionRanges | None:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    special = []
    for name, number_type in _SPECIAL_TYPES:
        compiled = _range(getattr(metadata, name))
        if compiled is not None:
            special.append((compiled, number_type))
    return _RegionRanges(
        leading_digits=re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None,
        general=_range(metadata.general_desc),
        special=tuple(special),
        fixed_line=_range(metadata.fixed_line),
        mobile=_range(metadata.mobile),
        same_mobile_and_fixed_line=bool(metadata.same_mobile_and_fixed_line_pattern),
    )


@functools.lru_cache(maxsize=64)
def _calling_code(region: str) -> int:
    return phonenumbers.country_code_for_region(region)


def _rejected(reason: str) -> Rejected:
    return Rejected(reason, _MESSAGES[reason])
