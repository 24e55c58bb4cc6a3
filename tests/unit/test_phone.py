"""Phone normalisation: E.164 across countries, the default-prefix rule, reason codes, dedupe."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.errors import ConfigurationError
from libs.common.phone import Normalised, Rejected, dedupe, normalise, region_for_prefix


@pytest.mark.parametrize(
    ("raw", "prefix", "e164", "region"),
    [
        ("(415) 555-2671", "+1", "+14155552671", "US"),
        ("415.555.2671", "+1", "+14155552671", "US"),
        ("1-415-555-2671", "+1", "+14155552671", "US"),
        ("+1 415 555 2671", "+1", "+14155552671", "US"),
        ("  4155552671  ", "+1", "+14155552671", "US"),
        ("１４１５５５５２６７１", "+1", "+14155552671", "US"),
        ("416 979 1234", "+1", "+14169791234", "CA"),
        ("+1 (604) 555-0199", "+1", "+16045550199", "CA"),
        # the seed's rule: a leading + wins over the organisation's default prefix
        ("+44 20 7234 3456", "+1", "+442072343456", "GB"),
        ("+44 (0)20 7234 3456", "+1", "+442072343456", "GB"),
        ("020 7234 3456", "+44", "+442072343456", "GB"),
        ("07400 123456", "+44", "+447400123456", "GB"),
        ("0118 496 0000", "+44", "+441184960000", "GB"),
        ("011 44 7400 123456", "+1", "+447400123456", "GB"),
        ("0044 7400 123456", "+1", "+447400123456", "GB"),
        ("00 1 415 555 2671", "+44", "+14155552671", "US"),
        ("0412 345 678", "+61", "+61412345678", "AU"),
        ("+61 412 345 678", "+1", "+61412345678", "AU"),
        ("0011 1 415 555 2671", "+61", "+14155552671", "US"),
        ("00 33 6 12 34 56 78", "+49", "+33612345678", "FR"),
        ("+49 1512 3456789", "+1", "+4915123456789", "DE"),
        ("030 123456", "+49", "+4930123456", "DE"),
        ("06 12 34 56 78", "+33", "+33612345678", "FR"),
        ("+353 85 123 4567", "+1", "+353851234567", "IE"),
        ("021 123 4567", "+64", "+64211234567", "NZ"),
        ("+91 98765 43210", "+1", "+919876543210", "IN"),
        ("+1 787 555 0123", "+1", "+17875550123", "PR"),
    ],
)
def test_numbers_normalise_to_e164(raw: str, prefix: str, e164: str, region: str) -> None:
    result = normalise(raw, prefix)
    assert isinstance(result, Normalised), result
    assert (result.e164, result.region) == (e164, region)


@pytest.mark.parametrize(
    ("raw", "prefix", "reason"),
    [
        (None, "+1", "phone_empty"),
        ("", "+1", "phone_empty"),
        ("   ", "+1", "phone_empty"),
        ("( ) -", "+1", "phone_empty"),
        ("415 555 2671 ext. 12", "+1", "phone_has_extension"),
        ("415 555 2671 x12", "+1", "phone_has_extension"),
        ("415-555-2671 #3", "+1", "phone_has_extension"),
        ("415-555-2671,,3", "+1", "phone_has_extension"),
        ("+44 20 7234 3456 extension 9", "+1", "phone_has_extension"),
        ("1-800-FLOWERS", "+1", "phone_has_letters"),
        ("four one five", "+1", "phone_has_letters"),
        ("415*555*2671", "+1", "phone_invalid_characters"),
        ("+1 415 +555 2671", "+1", "phone_invalid_characters"),
        ("12", "+1", "phone_too_short"),
        ("123", "+1", "phone_too_short"),
        ("+1 415 555 26711", "+1", "phone_too_long"),
        ("+999 123456", "+1", "phone_invalid_country_code"),
        ("555 2671", "+1", "phone_not_possible"),
        ("+44 20 7234 345", "+1", "phone_invalid_for_region"),
        ("(123) 555-2671", "+1", "phone_invalid_for_region"),
        ("07700 900123", "+44", "phone_invalid_for_region"),
    ],
)
def test_bad_numbers_are_rejected_with_a_reason(raw: str | None, prefix: str, reason: str) -> None:
    result = normalise(raw, prefix)
    assert isinstance(result, Rejected), result
    assert result.reason == reason
    assert raw is None or raw.strip() == "" or raw not in result.message


@pytest.mark.parametrize(
    ("raw", "number_type", "warnings"),
    [
        ("+44 20 7234 3456", "fixed_line", ("phone_fixed_line",)),
        ("+49 30 123456", "fixed_line", ("phone_fixed_line",)),
        ("+44 909 876 5432", "premium_rate", ("phone_unlikely_sms",)),
        ("+1 900 555 0100", "premium_rate", ("phone_unlikely_sms",)),
        ("+44 7400 123456", "mobile", ()),
        ("+1 415 555 2671", "fixed_line_or_mobile", ()),
        ("+1 800 555 0100", "toll_free", ()),
    ],
)
def test_types_that_cannot_receive_sms_are_flagged(raw: str, number_type: str, warnings: tuple[str, ...]) -> None:
    result = normalise(raw)
    assert isinstance(result, Normalised)
    assert (result.number_type, result.warnings) == (number_type, warnings)


@pytest.mark.parametrize(
    ("prefix", "region"), [("+1", "US"), ("+44", "GB"), ("44", "GB"), ("+61", "AU"), (" +49 ", "DE")]
)
def test_default_prefix_maps_to_its_main_region(prefix: str, region: str) -> None:
    assert region_for_prefix(prefix) == region


@pytest.mark.parametrize("prefix", ["", "+", "+999", "+800", "+1-2", "UK", "+4444"])
def test_an_invalid_default_prefix_is_a_configuration_error(prefix: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalise("4155552671", prefix)
    assert caught.value.code == "phone_prefix_invalid"


def test_dedupe_keeps_the_first_of_each_number_in_order() -> None:
    members = [("ann", "(415) 555-2671"), ("bob", "+44 20 7234 3456"), ("cat", "1 415 555 2671"), ("dan", "")]
    numbers = [(name, normalise(raw)) for name, raw in members]
    valid = [(name, number) for name, number in numbers if isinstance(number, Normalised)]
    kept, duplicates = dedupe(valid, key=lambda member: member[1].e164)
    assert [name for name, _ in kept] == ["ann", "bob"]
    assert [name for name, _ in duplicates] == ["cat"]


def test_dedupe_of_plain_strings() -> None:
    assert dedupe(["+1", "+2", "+1"], key=str) == (["+1", "+2"], ["+1"])


# -- agreement with phonenumbers' public API (guards the fast paths and the private type helper) -----

_DIGITS = st.text(alphabet="0123456789", min_size=6, max_size=15)
_SHAPES = st.sampled_from(["{d}", "+{d}", "1{d}", "+1{d}", "00{d}", "011{d}", "0{d}", "({a}) {b}-{c}"])
_PREFIXES = st.sampled_from(["+1", "+44", "+61", "+49", "+33", "+52"])


@settings(max_examples=1500, deadline=None)
@given(_DIGITS, _SHAPES, _PREFIXES)
def test_agrees_with_phonenumbers_public_api(digits: str, shape: str, prefix: str) -> None:
    raw = shape.format(d=digits, a=digits[:3], b=digits[3:6], c=digits[6:])
    result = normalise(raw, prefix)
    region = region_for_prefix(prefix)
    text = raw.replace("(", "").replace(")", "").replace(" ", "").replace("-", "")
    if text.startswith("00") and prefix == "+1":
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        assert isinstance(result, Rejected)
        return
    # We refuse local-only numbers (IS_POSSIBLE_LOCAL_ONLY) that is_possible_number accepts: no area code.
    possible = phonenumbers.is_possible_number_with_reason(parsed) == phonenumbers.ValidationResult.IS_POSSIBLE
    valid = possible and phonenumbers.is_valid_number(parsed)
    if not valid:
        assert isinstance(result, Rejected)
        return
    assert isinstance(result, Normalised)
    assert result.e164 == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    assert result.region == phonenumbers.region_code_for_number(parsed)
    assert result.number_type == phonenumbers.PhoneNumberType.to_string(phonenumbers.number_type(parsed)).lower()


def test_every_regions_example_numbers_get_phonenumbers_type_and_region() -> None:
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in range(11):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            result = normalise(e164)
            if not phonenumbers.is_valid_number(example):
                assert isinstance(result, Rejected)
                continue
            if isinstance(result, Rejected):  # valid but local-only lengths, which we refuse on purpose
                assert result.reason == "phone_not_possible", (region, number_type, result)
                continue
            assert result.region == phonenumbers.region_code_for_number(example), e164
            expected = phonenumbers.PhoneNumberType.to_string(phonenumbers.number_type(example)).lower()
            assert result.number_type == expected, e164
