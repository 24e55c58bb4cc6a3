"""Count SMS segments exactly as Twilio does (``docs/segments.md``).

    >>> count = count_segments("Hi Zoë, your membership renews on 1 July.")
    >>> count.encoding, count.segments, count.units
    ('UCS-2', 1, 41)

Rules, following Twilio's calculator (TwilioDevEd/message-segment-calculator) with Smart Encoding off:

- The body is GSM-7 when every character is in the GSM 03.38 basic table (1 septet) or extension
  table (2 septets: ESC + code); otherwise the whole body is UCS-2 and every character costs its
  UTF-16 length (GSM characters, extension ones too, cost 1 unit).
- Characters are grapheme clusters, except that CR LF counts as two characters. A cluster never
  splits across parts, nor does an ESC pair, so a part may hold 152 septets or 66 units.
- One part holds 160 septets / 70 units. Once a message needs two, every part carries a header and
  holds 153 / 67; part 1 then hands its trailing characters, whole and in order, to part 2.

Grapheme clusters follow Unicode 13 (the ``grapheme`` package); the calculator's grapheme-splitter
follows Unicode 10. They disagree only on emoji ZWJ sequences with emoji newer than 2017 (``❤️‍🔥``,
which we keep whole and the calculator may split between parts) and on a flag followed by combining
marks. On 15,000 random bodies without such sequences, run through the calculator's compiled code,
encoding, segment count and every part's size agreed.

``count_segments`` refuses bodies Twilio would refuse or that no member should receive, with an
:class:`InvalidBody` whose ``code`` is one of ``body_empty``, ``body_too_long``, ``body_lone_surrogate``,
``body_nul`` or ``body_control_char``.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import grapheme

from libs.common.errors import PermanentError
from libs.common.smart_encoding import smart_encode

__all__ = [
    "GSM7",
    "GSM7_PARTS",
    "GSM_BASIC",
    "GSM_EXTENSION",
    "MAX_BODY_LENGTH",
    "UCS2",
    "UCS2_PARTS",
    "Encoding",
    "InvalidBody",
    "PartSizes",
    "SegmentCount",
    "Ucs2Character",
    "count_segments",
    "explain_ucs2",
    "graphemes",
    "smart_encode",
]

Encoding = Literal["GSM-7", "UCS-2"]
GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

# Twilio error 21617. Measured in UTF-16 code units, the strictest reading of "1,600 characters":
# an emoji outside the BMP counts twice, so a body we accept is never refused for length.
MAX_BODY_LENGTH: Final = 1600

GSM_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION: Final = "\f^{}\\[~]|€"


@dataclass(frozen=True, slots=True)
class PartSizes:
    """Units one part holds: ``single`` when the message is one part, ``multi`` once it has headers."""

    single: int
    multi: int


# Configurable because a third-party calculator claims 152/66 for US/CA toll-free (unverified).
GSM7_PARTS: Final = PartSizes(single=160, multi=153)
UCS2_PARTS: Final = PartSizes(single=70, multi=67)


class InvalidBody(PermanentError):
    """A body that cannot be sent; ``position`` is the index of the offending character, if any."""

    def __init__(self, code: str, message: str, position: int | None = None) -> None:
        super().__init__(code, message)
        self.position = position


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How Twilio will split and bill one body.

    ``characters`` counts grapheme clusters (CR LF as two); ``units`` are septets for GSM-7 and UTF-16
    code units for UCS-2; ``parts`` re-join to ``body``, the text that was counted (after Smart Encoding
    when it was asked for); ``ucs2_characters`` are the distinct clusters that force UCS-2, in order.
    """

    encoding: Encoding
    segments: int
    characters: int
    units: int
    remaining_in_segment: int
    parts: tuple[str, ...]
    part_units: tuple[int, ...]
    ucs2_characters: tuple[str, ...]
    body: str


@dataclass(frozen=True, slots=True)
class Ucs2Character:
    """One cluster that forces UCS-2: how often it occurs and what Smart Encoding would send instead."""

    character: str
    code_points: str
    name: str
    occurrences: int
    replacement: str | None


_GSM_SET: Final = frozenset(GSM_BASIC + GSM_EXTENSION)
_DISALLOWED = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_BASIC = re.compile(f"[^{re.escape(GSM_BASIC)}]")
_EXTENSION = re.compile(f"[{re.escape(GSM_EXTENSION)}]")
_NOT_GSM = re.compile(f"[^{re.escape(GSM_BASIC + GSM_EXTENSION)}]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# Anything outside these ranges may join its neighbours into one cluster (combining marks, ZWJ,
# variation selectors, Hangul jamo, regional indicators) or sits outside the BMP. Inside them every
# code point is its own cluster, so the grapheme splitter, ~0.5 us a character, can be skipped.
_CLUSTERING = "[^\x00-\u02ff\u0370-\u0482\u048a-\u052f\u2010-\u2027\u2030-\u205e\u20a0-\u20c0\u4e00-\u9fff]"
_MAY_CLUSTER = re.compile(_CLUSTERING)
_CLUSTERING_RUN = re.compile(f"{_CLUSTERING}+")


def count_segments(
    body: str,
    *,
    smart_encoding: bool = False,
    gsm7: PartSizes = GSM7_PARTS,
    ucs2: PartSizes = UCS2_PARTS,
) -> SegmentCount:
    """Count ``body`` as Twilio will, applying Smart Encoding first when ``smart_encoding`` is true.

    Pure and deterministic. Raises :class:`InvalidBody` for an empty body (Twilio warning 14103), one
    longer than 1,600 UTF-16 units (error 21617), or one holding a lone surrogate, NUL or any other
    control character than TAB, LF, FF and CR; the length and character checks apply to ``body`` as given.
    """
    _validate(body)
    if smart_encoding:
        body = smart_encode(body)
        if not body:
            raise InvalidBody(
                "body_empty", "the message body is empty once Smart Encoding removes invisible characters"
            )
    if _NOT_BASIC.search(body) is None:
        return _uniform(body, GSM7, gsm7, ())
    if _NOT_GSM.search(body) is None:
        escaped = [match.start() for match in _EXTENSION.finditer(body)]
        return _packed(body, GSM7, gsm7, body, escaped, [1] * len(escaped), ())
    if _MAY_CLUSTER.search(body) is None:
        return _uniform(body, UCS2, ucs2, tuple(dict.fromkeys(_NOT_GSM.findall(body))))
    clusters = graphemes(body)
    # Clusters of several code points are never in the set, so this also catches e + U+0301.
    offending = tuple(dict.fromkeys(c for c in clusters if c not in _GSM_SET))
    wide = [(index, cluster) for index, cluster in enumerate(clusters) if len(cluster) > 1 or cluster > "\uffff"]
    extras = [_utf16_length(cluster) - 1 for _, cluster in wide]
    return _packed(body, UCS2, ucs2, clusters, [index for index, _ in wide], extras, offending)


def graphemes(body: str) -> list[str]:
    """Split ``body`` into the characters the calculator counts: grapheme clusters, CR LF as two."""
    if _MAY_CLUSTER.search(body) is None:
        return list(body)
    clusters: list[str] = []
    done = 0
    for start, end in _clustering_spans(body):
        clusters += body[done:start]
        clusters += _split_span(body[start:end])
        done = end
    clusters += body[done:]
    if "\r\n" in clusters:
        return [part for cluster in clusters for part in (("\r", "\n") if cluster == "\r\n" else (cluster,))]
    return clusters


def _clustering_spans(body: str) -> list[tuple[int, int]]:
    """Spans that need the grapheme splitter: each run of clustering code points, one neighbour either side.

    Two other code points never join (CR LF aside, which is split anyway), and every rule that looks
    further back (emoji ZWJ sequences, flag pairs) looks back only across code points inside the run.
    Runs one code point apart share that neighbour, so they are merged into one span.
    """
    spans: list[tuple[int, int]] = []
    for run in _CLUSTERING_RUN.finditer(body):
        start, end = max(run.start() - 1, 0), min(run.end() + 1, len(body))
        if spans and start < spans[-1][1]:
            start = spans.pop()[0]
        spans.append((start, end))
    return spans


@functools.lru_cache(maxsize=4096)
def _split_span(span: str) -> tuple[str, ...]:
    # Cached because a campaign's emoji sit in its template, so every member repeats the same spans.
    return tuple(grapheme.graphemes(span))


def explain_ucs2(body: str) -> tuple[Ucs2Character, ...]:
    """List the clusters in ``body`` that force UCS-2, in order of first appearance.

    ``replacement`` is the GSM-7 text Smart Encoding would send for the cluster, or None when it has no
    GSM-7 replacement (accented letters such as ``ë`` and every emoji). Does not validate ``body``.
    """
    counts = Counter(c for c in graphemes(body) if c not in _GSM_SET)
    explained = []
    for cluster, occurrences in counts.items():
        replaced = smart_encode(cluster)
        explained.append(
            Ucs2Character(
                character=cluster,
                code_points=" ".join(f"U+{ord(char):04X}" for char in cluster),
                name=" + ".join(unicodedata.name(char, f"U+{ord(char):04X}") for char in cluster),
                occurrences=occurrences,
                replacement=replaced if all(char in _GSM_SET for char in replaced) else None,
            )
        )
    return tuple(explained)


def _validate(body: str) -> None:
    if not body:
        raise InvalidBody("body_empty", "the message body is empty; Twilio refuses an SMS without a body")
    length = len(body)
    if length > MAX_BODY_LENGTH or (length * 2 > MAX_BODY_LENGTH and _utf16_length(body) > MAX_BODY_LENGTH):
        raise InvalidBody(
            "body_too_long",
            f"the message body is {_utf16_length(body)} characters; Twilio accepts at most {MAX_BODY_LENGTH}",
        )
    bad = _DISALLOWED.search(body)
    if bad is not None:
        char, position = bad.group(), bad.start()
        if char == "\x00":
            raise InvalidBody("body_nul", f"the message body contains a NUL character at position {position}", position)
        if "\ud800" <= char <= "\udfff":
            raise InvalidBody(
                "body_lone_surrogate",
                f"the message body contains a lone surrogate U+{ord(char):04X} at position {position}",
                position,
            )
        raise InvalidBody(
            "body_control_char",
            f"the message body contains the control character U+{ord(char):04X} at position {position}",
            position,
        )


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))


def _uniform(body: str, encoding: Encoding, sizes: PartSizes, offending: tuple[str, ...]) -> SegmentCount:
    """Every character is its own cluster and costs one unit, so the split is arithmetic."""
    length = len(body)
    if length <= sizes.single:
        parts: tuple[str, ...] = (body,)
        part_units: tuple[int, ...] = (length,)
        remaining = sizes.single - length
    else:
        step = sizes.multi
        parts = tuple(body[start : start + step] for start in range(0, length, step))
        part_units = tuple(len(part) for part in parts)
        remaining = step - part_units[-1]
    return SegmentCount(encoding, len(parts), length, length, remaining, parts, part_units, offending, body)


def _packed(
    body: str,
    encoding: Encoding,
    sizes: PartSizes,
    clusters: Sequence[str],
    wide_at: list[int],
    extras: list[int],
    offending: tuple[str, ...],
) -> SegmentCount:
    """Count clusters that mostly cost one unit; cluster ``wide_at[k]`` costs ``1 + extras[k]``."""
    count = len(clusters)
    carried = [0, *itertools.accumulate(extras)]

    def units_before(index: int) -> int:
        return index + carried[bisect.bisect_left(wide_at, index)]

    units = units_before(count)
    if units <= sizes.single:
        return SegmentCount(encoding, 1, count, units, sizes.single - units, (body,), (units,), offending, body)
    starts, used = _pack(count, units_before, sizes)
    ends = [*starts[1:], count]
    if isinstance(clusters, str):
        parts = tuple(clusters[start:end] for start, end in zip(starts, ends, strict=True))
    else:
        parts = tuple("".join(clusters[start:end]) for start, end in zip(starts, ends, strict=True))
    remaining = max(0, sizes.multi - used[-1])
    return SegmentCount(encoding, len(parts), count, units, remaining, parts, tuple(used), offending, body)


def _pack(count: int, units_before: Callable[[int], int], sizes: PartSizes) -> tuple[list[int], list[int]]:
    """Return each part's first cluster index and its units, for a body longer than one SMS.

    The calculator fills part 1 until a cluster does not fit. Part 1 then gets its header and gives up
    clusters from its end until it fits ``sizes.multi``; they open part 2, followed by the cluster that
    did not fit. From then on a cluster that does not fit opens a new part, which always takes it. This
    is why one ESC pair or emoji at a boundary can cost a whole extra segment. ``units_before`` is
    increasing, so each boundary is a binary search rather than a walk over the body.
    """
    positions = range(count + 1)

    def last_within(limit: int, low: int) -> int:
        return bisect.bisect_right(positions, limit, lo=low, key=units_before) - 1

    overflow = last_within(sizes.single, 0)
    first = min(last_within(sizes.multi, 0), overflow)
    starts, used = [0], [units_before(first)]
    start, must_hold = first, overflow + 1
    while True:
        end = min(count, max(must_hold, last_within(units_before(start) + sizes.multi, start)))
        starts.append(start)
        used.append(units_before(end) - units_before(start))
        if end == count:
            return starts, used
        start, must_hold = end, end + 1
