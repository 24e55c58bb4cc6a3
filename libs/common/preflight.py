"""Preflight: what a body costs and who can receive it, before anything is scheduled.

Two entry points compose :mod:`segments`, :mod:`merge`, :mod:`phone` and :mod:`pricing`:

- :func:`preview` answers the composer's live counter (``POST /api/v1/messages/preview``) for one
  body and one set of sample values.
- :func:`preflight_members` checks a whole audience: render, count and normalise each member, drop
  duplicates by E.164, and price the result.

Both are pure. :func:`preview` raises the typed errors of the modules it uses (``MergeError``,
``InvalidBody``, each a ``PermanentError`` with a ``code``), or ``PermanentError`` ``country_invalid``,
for the API's one exception handler to render. :func:`preflight_members` never raises for a member's
data: each problem becomes that member's ``reason``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from libs.common.errors import PermanentError
from libs.common.links import check_links, preview_body
from libs.common.merge import STANDARD_FIELDS, MergeError, Template, compile_template
from libs.common.phone import Normalised, dedupe, normalise
from libs.common.pricing import PUMPING_PROTECTION_FREE, Estimate, PriceTable
from libs.common.segments import InvalidBody, SegmentCount, count_segments, explain_ucs2

__all__ = ["MAX_SEGMENTS", "SAMPLE_VALUES", "Checked", "PreflightReport", "preflight_members", "preview"]

# Textpulse refuses more than 10 segments per recipient (docs/twilio.md#message-size, a convention, not a Twilio limit).
MAX_SEGMENTS: Final = 10

# Shown when the composer has no member to preview with.
SAMPLE_VALUES: Final[Mapping[str, str]] = {
    "first_name": "Alex",
    "last_name": "Morgan",
    "full_name": "Alex Morgan",
    "informal_name": "Alex",
    "chapter": "Boston",
    "member_id": "100234",
    "member_type": "Regular",
}


def preview(
    body: str,
    sample_values: Mapping[str, object] | None,
    country: str,
    *,
    smart_encoding: bool = False,
    prices: PriceTable | None = None,
    short_link_base: str | None = None,
) -> dict[str, Any]:
    """Render ``body`` with ``sample_values`` (or :data:`SAMPLE_VALUES`) and describe its cost.

    With ``short_link_base`` (a tracked campaign) every link is shown, and counted, as the short link of
    that base a member receives (:func:`libs.common.links.preview_body`); a link that cannot be tracked
    raises ``LinkError``.

    ``country`` is the destination's ISO 3166 code (``US``). Known merge fields are the standard ones
    plus the keys of ``sample_values``. ``smart_encoding`` says whether the sending Messaging Service
    has Smart Encoding on. The result is JSON-ready: money is a decimal string, or None without a price.
    """
    region = country.strip().upper()
    if len(region) != 2 or not region.isalpha() or not region.isascii():
        raise PermanentError("country_invalid", f"country {country!r} is not an ISO 3166 code such as 'US'")
    values = SAMPLE_VALUES if sample_values is None else sample_values
    template = compile_template(body, fields=STANDARD_FIELDS | {name.lower() for name in values})
    rendered = template.render({name.lower(): value for name, value in values.items()})
    if short_link_base is not None:
        check_links(body)
        rendered = preview_body(rendered, short_link_base)
    count = count_segments(rendered, smart_encoding=smart_encoding)
    table = prices or PriceTable()
    cost = table.cost_for(region, count.segments)
    warnings = []
    if count.segments > MAX_SEGMENTS:
        warnings.append("segments_over_limit")
    if cost is None:
        warnings.append("price_unknown")
    if region not in PUMPING_PROTECTION_FREE:
        warnings.append("pumping_protection_may_apply")
    suggestion = None
    if count.encoding == "UCS-2" and not smart_encoding:
        smart = count_segments(rendered, smart_encoding=True)
        suggestion = {"body": smart.body, "encoding": smart.encoding, "segments": smart.segments}
    return {
        "body": rendered,
        "fields": list(template.fields),
        "encoding": count.encoding,
        "segments": count.segments,
        "characters": count.characters,
        "units": count.units,
        "remaining_in_segment": count.remaining_in_segment,
        "part_units": list(count.part_units),
        "ucs2_characters": [
            {
                "character": item.character,
                "code_points": item.code_points,
                "name": item.name,
                "occurrences": item.occurrences,
                "replacement": item.replacement,
            }
            for item in (explain_ucs2(count.body) if count.encoding == "UCS-2" else ())
        ],
        "smart_encoded": suggestion,
        "country": region,
        "cost_per_recipient": None if cost is None else str(cost),
        "warnings": warnings,
    }


@dataclass(frozen=True, slots=True)
class Checked:
    """One member after preflight. ``reason`` is None when the member can be sent to."""

    member_id: str
    e164: str | None
    region: str | None
    encoding: str | None
    segments: int
    reason: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PreflightReport:
    """Members split three ways (each in input order) and the estimate for those who will be sent."""

    sendable: tuple[Checked, ...]
    duplicates: tuple[Checked, ...]
    rejected: tuple[Checked, ...]
    estimate: Estimate


def preflight_members(
    template: Template,
    members: Iterable[tuple[str, str | None, Mapping[str, object]]],
    *,
    default_country_prefix: str = "+1",
    smart_encoding: bool = False,
    prices: PriceTable | None = None,
    known_failing: Collection[str] = frozenset(),
) -> PreflightReport:
    """Check each ``(member_id, raw_phone, values)``: number, rendered body, segments.

    Rejection reasons are the modules' codes (``phone_*``, ``merge_value_missing``, ``body_*``) or
    ``segments_over_limit``; rejected members are never sent, so they cost nothing. The first member
    per E.164 number is kept, later ones are duplicates. ``known_failing`` holds E.164 numbers known
    to end ``failed`` (an earlier unreachable or landline failure): Twilio charges those the
    failed-message fee instead of their segments, and the estimate does the same.
    """
    checked = [_check(template, member, default_country_prefix, smart_encoding) for member in members]
    accepted = [member for member in checked if member.reason is None]
    rejected = tuple(member for member in checked if member.reason is not None)
    sendable, duplicates = dedupe(accepted, key=lambda member: member.e164)
    failing = sum(1 for member in sendable if member.e164 in known_failing)
    estimate = (prices or PriceTable()).estimate(
        ((member.region or "", member.segments) for member in sendable if member.e164 not in known_failing),
        expected_failures=failing,
    )
    return PreflightReport(tuple(sendable), tuple(duplicates), rejected, estimate)


def _check(
    template: Template,
    member: tuple[str, str | None, Mapping[str, object]],
    default_country_prefix: str,
    smart_encoding: bool,
) -> Checked:
    member_id, raw_phone, values = member
    number = normalise(raw_phone, default_country_prefix)
    if not isinstance(number, Normalised):
        return Checked(member_id, None, None, None, 0, number.reason)
    try:
        count: SegmentCount = count_segments(template.render(values), smart_encoding=smart_encoding)
    except (MergeError, InvalidBody) as error:
        return Checked(member_id, number.e164, number.region, None, 0, error.code, number.warnings)
    reason = "segments_over_limit" if count.segments > MAX_SEGMENTS else None
    return Checked(member_id, number.e164, number.region, count.encoding, count.segments, reason, number.warnings)
