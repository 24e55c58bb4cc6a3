"""Phone numbers as people type them into the dashboard and the API, for every phone input.

"(617) 555-0199", "617-555-0199", "+1 617 555 0199" and, for a +44 organisation, "07700 900123" are
all accepted: ``libs.common.phone.normalise`` reads them with the organisation's default country
prefix. A number it cannot read is refused with :class:`InvalidInput` naming the field and saying why.

    >>> number_input("phone", "(617) 555-0199", "+1")
    '+16175550199'
    >>> number_search("q", "555-0199", "+1")      # part of a number: its digits, to match inside numbers
    '5550199'
"""

from __future__ import annotations

import re

from libs.common import phone as phones
from services.api.errors import InvalidInput

_TYPED_DIGITS = re.compile(r"\+?[\d\s().\-/]+")
_DROP = str.maketrans("", "", " \t().-/")


def number_input(field: str, raw: str, default_country_prefix: str) -> str:
    """The E.164 form of one number as typed; raises InvalidInput (``phone_*`` reason) if it is not one."""
    result = phones.normalise(raw, default_country_prefix)
    if isinstance(result, phones.Rejected):
        raise InvalidInput(field, result.reason, f"This is not a phone number that can be texted: {result.message}.")
    return result.e164


def number_search(field: str, raw: str | None, default_country_prefix: str) -> str | None:
    """What a search for a number matches inside stored E.164 numbers; None for an empty search.

    A whole number in any typed format becomes its E.164 form; part of one ("0199", "555-0199") its
    digits. Text that is not digits and phone punctuation is refused, with a sentence saying what to type.
    """
    text = (raw or "").strip()
    if not text:
        return None
    digits = number_digits(text, default_country_prefix)
    if digits is None:
        raise InvalidInput(field, "phone_search_invalid",
                           "Search with a phone number or its last digits, like (617) 555-0199 or 0199.")
    return digits


def number_digits(raw: str, default_country_prefix: str) -> str | None:
    """``raw`` as number_search reads it, or None when it is not a number or part of one (a name)."""
    text = raw.strip()
    if not text or not _TYPED_DIGITS.fullmatch(text):
        return None
    result = phones.normalise(text, default_country_prefix)
    return result.e164 if isinstance(result, phones.Normalised) else text.translate(_DROP)
