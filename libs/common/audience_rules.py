"""Who of a run's audience gets the text, and why the others do not. Pure: no I/O, no clock.

    >>> from libs.common.merge import compile_template
    >>> members = [AudienceMember("2", "(415) 555-0139", {"first_name": "Mei"}),
    ...            AudienceMember("1", "415-555-0139", {"first_name": "Jun"})]
    >>> rows = classify(members, compile_template("Hi {{first_name}}"), default_country_prefix="+1",
    ...                 suppressed=set(), bad_numbers=set())
    >>> [(r.member_id, r.status, r.reason, r.duplicate_of) for r in rows]
    [('2', 'excluded', 'duplicate_number', '1'), ('1', 'queued', None, None)]

Each member is checked in this order; the first rule that applies is its ``reason``:

1. ``duplicate_member``: the same member id came earlier in the audience (IQA joins can repeat rows).
2. ``opted_out``: the source's own opt-out flag (``detail`` ``imis_opt_out``).
3. ``missing_mobile``: no number at all.
4. ``invalid_number``: :func:`libs.common.phone.normalise` refused it (``detail`` is its code).
5. ``opted_out``: the number is in the suppression table for the organisation or this sender
   (``detail`` ``suppressed``).
6. ``bad_number``: Twilio said earlier that the number cannot receive texts (``detail`` the error code).
7. ``render_failed``: the body cannot be rendered for this member (``detail``: ``merge_value_missing``,
   ``body_too_long``...); ``over_segment_limit``: it renders to more than 10 segments.
8. ``duplicate_number``: another member who passed 1-7 has the same E.164 number. One text per number
   per run, attributed to the member with the lowest id (numeric ids as numbers, then other ids as text,
   then rows without an id), so the choice does not depend on how the IQA sorts; ``duplicate_of``
   records that member on the others.

Run-level rules come after: :func:`decide` refuses a run whose unverified sender would text US/Canada
numbers and stops one over its segment limits, before anything is published.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

from libs.common import run_reasons
from libs.common.links import Shortener, TrackedLink
from libs.common.merge import MergeError, Template
from libs.common.phone import Normalised, Rejected, normalise
from libs.common.preflight import MAX_SEGMENTS
from libs.common.segments import InvalidBody, count_segments
from libs.common.send_checks import NANP_PREFIX, sender_cannot_reach

__all__ = [
    "REASONS",
    "AudienceMember",
    "SnapshotRow",
    "Totals",
    "Verdict",
    "candidate_numbers",
    "classify",
    "classify_each",
    "decide",
    "totals",
]

REASONS: Final = (
    "duplicate_member",
    "opted_out",
    "missing_mobile",
    "invalid_number",
    "bad_number",
    "render_failed",
    "over_segment_limit",
    "duplicate_number",
)


@dataclass(frozen=True, slots=True)
class AudienceMember:
    """One member as a source returned it; ``values`` are merge values keyed by lower-case field name;
    ``address_state`` the US state of their address (:func:`libs.common.us_states.us_state`), if known."""

    member_id: str
    raw_phone: str | None
    values: Mapping[str, object]
    opted_out: bool = False
    address_state: str | None = None


@dataclass(slots=True)
class SnapshotRow:
    """One row of the run's snapshot. ``reason`` None means queued."""

    position: int
    member_id: str
    raw_phone: str | None
    e164: str | None = None
    region: str | None = None
    merge_values: dict[str, str | None] | None = None
    body: str | None = None
    encoding: str | None = None
    segments: int = 0
    reason: str | None = None
    detail: str | None = None
    duplicate_of: str | None = None
    links: tuple[TrackedLink, ...] = ()  # the tracked short links in ``body`` (a tracked campaign)
    address_state: str | None = None  # where the quiet-hours rules place the member (run_recipients, 0044)

    @property
    def status(self) -> Literal["queued", "excluded"]:
        return "queued" if self.reason is None else "excluded"


@lru_cache(maxsize=16_384)
def _normalise(raw: str, default_country_prefix: str) -> Normalised | Rejected:
    # A batch's numbers are normalised for the suppression lookup, then again when classified: a cache
    # the size of a few batches halves the cost, and memory stays bounded.
    return normalise(raw, default_country_prefix)


def candidate_numbers(members: Iterable[AudienceMember], default_country_prefix: str) -> set[str]:
    """The valid E.164 numbers of ``members``: what to look up in the suppression and bad-number tables."""
    numbers = set()
    for member in members:
        if member.raw_phone and not member.opted_out:
            number = _normalise(member.raw_phone, default_country_prefix)
            if isinstance(number, Normalised):
                numbers.add(number.e164)
    return numbers


def classify(
    members: Sequence[AudienceMember],
    template: Template | None,
    *,
    default_country_prefix: str,
    suppressed: Collection[str],
    bad_numbers: Mapping[str, int] | Collection[str],
    smart_encoding: bool = False,
) -> list[SnapshotRow]:
    """One :class:`SnapshotRow` per member, in input order, following the rules in the module docstring.

    ``bad_numbers`` maps E.164 to Twilio's error code (or is a plain collection). Without a ``template``
    (the body is not known yet) rule 7 is skipped and queued rows have no body and 0 segments. Raises only
    ConfigurationError for an invalid ``default_country_prefix``; a member's bad data becomes its reason.

    This is :func:`classify_each` followed by rules 1 and 8 over the whole list. The audience service
    applies those two to a streamed audience in PostgreSQL instead (services/audience/stage.sql, the
    same rules as set-based statements), so it never holds every member.
    """
    rows = classify_each(members, template, start=0, default_country_prefix=default_country_prefix,
                         suppressed=suppressed, bad_numbers=bad_numbers, smart_encoding=smart_encoding)
    _mark_repeated_members(rows)
    _attribute_households(rows)
    return rows


def classify_each(
    members: Iterable[AudienceMember],
    template: Template | None,
    *,
    start: int,
    default_country_prefix: str,
    suppressed: Collection[str],
    bad_numbers: Mapping[str, int] | Collection[str],
    smart_encoding: bool = False,
    shortener: Shortener | None = None,
) -> list[SnapshotRow]:
    """Rules 2 to 7 for each member on its own, positions counted from ``start``: what a page of a streamed
    audience can be told without the rest. Rules 1 and 8 (repeats across the audience) come after.
    With a ``shortener`` (a tracked campaign), each rendered body's links become that member's own short
    links before its segments are counted."""
    rows: list[SnapshotRow] = []
    for position, member in enumerate(members, start):
        row = SnapshotRow(position, member.member_id, member.raw_phone, address_state=member.address_state)
        rows.append(row)
        if member.opted_out:
            _exclude(row, "opted_out", "imis_opt_out")
            continue
        if member.raw_phone is None or not member.raw_phone.strip():
            _exclude(row, "missing_mobile")
            continue
        number = _normalise(member.raw_phone, default_country_prefix)
        if not isinstance(number, Normalised):
            _exclude(row, "invalid_number", number.reason)
            continue
        row.e164, row.region = number.e164, number.region
        if number.e164 in suppressed:
            _exclude(row, "opted_out", "suppressed")
            continue
        if number.e164 in bad_numbers:
            code = bad_numbers[number.e164] if isinstance(bad_numbers, Mapping) else None
            _exclude(row, "bad_number", f"twilio_{code}" if code is not None else None)
            continue
        if template is not None:
            _render(row, member, template, smart_encoding, shortener)
        if row.reason is None and number.warnings:
            row.detail = ",".join(number.warnings)
    return rows


def _mark_repeated_members(rows: list[SnapshotRow]) -> None:
    """Rule 1: a member id seen at an earlier position. It wins over rules 2-7, so the row keeps only its
    member id and raw number, as if nothing else had been looked at."""
    seen_ids: set[str] = set()
    for index, row in enumerate(rows):
        if not row.member_id:
            continue
        if row.member_id in seen_ids:
            repeated = SnapshotRow(row.position, row.member_id, row.raw_phone)
            _exclude(repeated, "duplicate_member", duplicate_of=row.member_id)
            rows[index] = repeated
        else:
            seen_ids.add(row.member_id)


def _exclude(row: SnapshotRow, reason: str, detail: str | None = None, *, duplicate_of: str | None = None) -> None:
    row.reason, row.detail, row.duplicate_of = reason, detail, duplicate_of


def _render(row: SnapshotRow, member: AudienceMember, template: Template, smart_encoding: bool,
            shortener: Shortener | None) -> None:
    row.merge_values = {name: _text(member.values.get(name)) for name in template.fields}
    try:
        body = template.render(member.values)
        if shortener is not None:
            body, row.links = shortener.shorten(body)
        count = count_segments(body, smart_encoding=smart_encoding)
    except (MergeError, InvalidBody) as error:
        _exclude(row, "render_failed", error.code)
        row.links = ()
        return
    row.body, row.encoding, row.segments = count.body, count.encoding, count.segments
    if count.segments > MAX_SEGMENTS:
        _exclude(row, "over_segment_limit", f"{count.segments} segments; at most {MAX_SEGMENTS} per text")


def _text(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def _id_order(member_id: str) -> tuple[int, int, str]:
    # ASCII digits only, as the set-based form of this rule (services/audience/stage.sql) reads them.
    if member_id.isascii() and member_id.isdigit():
        return (0, int(member_id), "")
    return (1, 0, member_id) if member_id else (2, 0, "")


def _attribute_households(rows: list[SnapshotRow]) -> None:
    by_number: dict[str, list[SnapshotRow]] = {}
    for row in rows:
        if row.reason is None and row.e164 is not None:
            by_number.setdefault(row.e164, []).append(row)
    for sharing in by_number.values():
        if len(sharing) < 2:
            continue
        keeper = min(sharing, key=lambda r: (_id_order(r.member_id), r.position))
        for row in sharing:
            if row is not keeper:
                _exclude(row, "duplicate_number", "household", duplicate_of=keeper.member_id)


@dataclass(frozen=True, slots=True)
class Totals:
    """What the snapshot adds up to: recipients queued, members excluded (by reason), queued segments."""

    recipients: int
    excluded: int
    segments: int
    by_reason: Mapping[str, int] = field(default_factory=dict)
    nanp_recipients: int = 0


def totals(rows: Iterable[SnapshotRow]) -> Totals:
    reasons: Counter[str] = Counter()
    recipients = segments = nanp = 0
    for row in rows:
        if row.reason is None:
            recipients += 1
            segments += row.segments
            nanp += row.e164 is not None and row.e164.startswith(NANP_PREFIX)
        else:
            reasons[row.reason] += 1
    return Totals(recipients, sum(reasons.values()), segments, dict(sorted(reasons.items())), nanp)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The run's state after resolution (``sending``, ``completed``, ``refused``, ``over_limit``) and why."""

    state: Literal["sending", "completed", "refused", "over_limit"]
    reason: run_reasons.RunReason | None = None

    @property
    def publishes(self) -> bool:
        return self.state == "sending"


def decide(
    figures: Totals,
    *,
    sender: str,
    sender_verification: str,
    segment_limit: int,
    account_max_segments: int | None,
) -> Verdict:
    """Whether the run may be published. Checked before any recipient event exists, in this order:

    no recipients -> ``completed`` (nothing to send is a finished run, not a failure); an unverified
    sender with US/CA recipients -> ``refused`` (Twilio blocks it with 30032 and still charges); more
    segments than the campaign's ``segment_limit`` or the account's ``max_segments`` -> ``over_limit``.
    Reasons are a stable code with the figures a person needs (:mod:`libs.common.run_reasons`).
    """
    if figures.recipients == 0:
        return Verdict("completed", run_reasons.no_recipients(figures.excluded))
    if sender_cannot_reach(sender, sender_verification, figures.nanp_recipients, figures.recipients) is not None:
        return Verdict("refused", run_reasons.sender_unverified(
            sender, sender_verification, nanp_recipients=figures.nanp_recipients, recipients=figures.recipients))
    limits: list[tuple[int, Literal["campaign", "account"]]] = [(segment_limit, "campaign")]
    if account_max_segments is not None:
        limits.append((account_max_segments, "account"))
    for limit, limit_of in sorted(limits):
        if figures.segments > limit:
            return Verdict("over_limit", run_reasons.segment_limit(figures.segments, figures.recipients, limit,
                                                                   limit_of=limit_of))
    return Verdict("sending")
