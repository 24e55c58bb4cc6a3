"""Merge fields in campaign bodies: parse once at compose time, render per member.

Syntax (whitespace inside the braces is ignored; field names are case-insensitive)::

    {{first_name}}                 the member's value; a member without one is refused at render time
    {{first_name|Member}}          "Member" when the value is missing or blank
    {{first_name||max=12}}         nothing when missing (an empty fallback is allowed)
    {{first_name|Member|max=12}}   at most 12 characters (grapheme clusters)
    {{chapter|max=20}}             at most 20 characters, cut at 20 when longer

A value longer than ``max`` is replaced by the fallback when one is declared, and otherwise cut to
``max`` characters: "Member" reads better than "Christopher-", but without a fallback cutting is the
only way to bound the length. ``max`` therefore bounds every rendered value, and a fallback longer
than its ``max`` is refused at compose time. Fallbacks are literal text and cannot contain ``|``,
``{`` or ``}``. Single braces are ordinary text (``save {10%}``); ``{{`` and ``}}`` only ever delimit a field.

Rendering substitutes strings and nothing else: values are inserted as they are, never parsed again,
so a member named ``{{chapter}}`` is just text. Errors are :class:`MergeError`, with ``code``
``merge_unbalanced_braces``, ``merge_field_invalid``, ``merge_unknown_field``,
``merge_fallback_too_long`` (compose time) or ``merge_value_missing`` (render time).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

import grapheme

from libs.common.errors import PermanentError

__all__ = ["STANDARD_FIELDS", "MergeError", "Template", "compile_template"]

# The names the audience service gives iMIS columns; a caller may pass its own set instead.
STANDARD_FIELDS: Final = frozenset(
    {"first_name", "last_name", "full_name", "informal_name", "chapter", "member_id", "member_type"}
)

_FIELD = re.compile(r"\{\{([^{}]*)\}\}")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_MAX = re.compile(r"max\s*=\s*(\d+)")
_MAX_LIMIT: Final = 1600


class MergeError(PermanentError):
    """A template or a member's values that cannot produce a body.

    ``fields`` names the merge fields at fault; ``position`` is the index in the template, if known.
    """

    def __init__(self, code: str, message: str, *, fields: tuple[str, ...] = (), position: int | None = None) -> None:
        super().__init__(code, message)
        self.fields = fields
        self.position = position


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str
    fallback: str | None
    max_length: int | None


class Template:
    """A parsed body. Immutable; :meth:`render` is safe to call from many tasks at once."""

    __slots__ = ("_pieces", "_slots", "fields", "source")

    def __init__(self, source: str, pieces: list[str], slots: list[tuple[int, _Slot]]) -> None:
        self.source = source
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(slot.name for _, slot in slots))
        self._pieces = pieces
        self._slots = slots

    def render(self, values: Mapping[str, object]) -> str:
        """Fill the fields from ``values`` (keyed by lower-case field name; None and blank mean missing).

        Raises :class:`MergeError` ``merge_value_missing`` when a field without fallback has no value.
        """
        if not self._slots:
            return self.source
        pieces = self._pieces.copy()
        for index, slot in self._slots:
            raw = values.get(slot.name)
            value = "" if raw is None else (raw if isinstance(raw, str) else str(raw)).strip()
            if not value:
                if slot.fallback is None:
                    raise MergeError(
                        "merge_value_missing",
                        f"no value for {{{{{slot.name}}}}} and no fallback; write {{{{{slot.name}|...}}}}",
                        fields=(slot.name,),
                    )
                value = slot.fallback
            # len() >= the cluster count, so the splitter only runs for values that might be too long.
            elif slot.max_length is not None and len(value) > slot.max_length:
                if grapheme.length(value) > slot.max_length:
                    value = slot.fallback if slot.fallback is not None else grapheme.slice(value, 0, slot.max_length)
            pieces[index] = value
        return "".join(pieces)


def compile_template(body: str, fields: Collection[str] = STANDARD_FIELDS) -> Template:
    """Parse ``body`` and check every merge field against ``fields``; raise :class:`MergeError` if wrong.

    Every unknown field is named in one error, with the closest known name where there is one.
    """
    known = {name.lower() for name in fields}
    pieces: list[str] = []
    slots: list[tuple[int, _Slot]] = []
    unknown: dict[str, str] = {}
    done = 0
    for match in _FIELD.finditer(body):
        _check_balanced(body, done, match.start())
        pieces.append(body[done : match.start()])
        slot = _parse_slot(match.group(1), match.start())
        if slot.name not in known:
            unknown.setdefault(slot.name, match.group())
        slots.append((len(pieces), slot))
        pieces.append("")
        done = match.end()
    _check_balanced(body, done, len(body))
    pieces.append(body[done:])
    if unknown:
        raise MergeError(
            "merge_unknown_field",
            "unknown merge field"
            + ("s: " if len(unknown) > 1 else ": ")
            + "; ".join(_describe_unknown(name, written, known) for name, written in unknown.items()),
            fields=tuple(unknown),
        )
    return Template(body, pieces, slots)


def _check_balanced(body: str, start: int, end: int) -> None:
    for stray in ("{{", "}}"):
        position = body.find(stray, start, end)
        if position != -1:
            raise MergeError(
                "merge_unbalanced_braces",
                f"'{stray}' at position {position} has no matching '{'}}' if stray == '{{' else '{{'}'; "
                "merge fields look like {{first_name}} and cannot contain braces",
                position=position,
            )


def _parse_slot(inner: str, position: int) -> _Slot:
    name, *options = (part.strip() for part in inner.split("|"))
    name = name.lower()
    if not _NAME.fullmatch(name):
        raise MergeError(
            "merge_field_invalid",
            f"'{{{{{inner}}}}}' at position {position} is not a field name (letters, digits and _)",
            position=position,
        )
    fallback: str | None = None
    max_length: int | None = None
    for option in options:
        limit = _MAX.fullmatch(option)
        if limit is not None and max_length is None:
            max_length = int(limit.group(1))
            if not 1 <= max_length <= _MAX_LIMIT:
                raise MergeError(
                    "merge_field_invalid",
                    f"max={max_length} for {{{{{name}}}}} must be between 1 and {_MAX_LIMIT}",
                    fields=(name,),
                    position=position,
                )
        elif limit is None and fallback is None and not option.startswith("max="):
            fallback = option
        else:
            raise MergeError(
                "merge_field_invalid",
                f"'{{{{{inner}}}}}' at position {position}: write {{{{name|fallback|max=N}}}}, each part at most once",
                fields=(name,),
                position=position,
            )
    if fallback is not None and max_length is not None and grapheme.length(fallback) > max_length:
        raise MergeError(
            "merge_fallback_too_long",
            f"the fallback '{fallback}' for {{{{{name}}}}} is longer than max={max_length}",
            fields=(name,),
            position=position,
        )
    return _Slot(name, fallback, max_length)


def _describe_unknown(name: str, written: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"{written} (did you mean {{{{{close[0]}}}}}?)" if close else written
