"""Segment counting: every worked example of docs/segments.md#worked-examples, the issue's edges, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.segments import (
    GSM_BASIC,
    GSM_EXTENSION,
    InvalidBody,
    PartSizes,
    count_segments,
    explain_ucs2,
    graphemes,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
GRIN = "\U0001f600"
PARTY = "\U0001f389"
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"

# (row, body, encoding, units, part units) -- docs/segments.md#worked-examples, one line per body.
WORKED_EXAMPLES = [
    ("2", "Hi", "GSM-7", 2, (2,)),
    ("3", "a" * 160, "GSM-7", 160, (160,)),
    ("4", "a" * 161, "GSM-7", 161, (153, 8)),
    ("5", "a" * 306, "GSM-7", 306, (153, 153)),
    ("6", "a" * 307, "GSM-7", 307, (153, 153, 1)),
    ("7a", "a" * 459, "GSM-7", 459, (153, 153, 153)),
    ("7b", "a" * 460, "GSM-7", 460, (153, 153, 153, 1)),
    ("8", "a" * 1600, "GSM-7", 1600, (153,) * 10 + (70,)),
    ("9", "a" * 158 + "€", "GSM-7", 160, (160,)),
    ("10", "a" * 159 + "€", "GSM-7", 161, (153, 8)),
    ("11", "{" * 80, "GSM-7", 160, (160,)),
    ("12", "{" * 81, "GSM-7", 162, (152, 10)),
    ("13", "a" * 152 + "€" + "a" * 7, "GSM-7", 161, (152, 9)),
    ("14", "a" * 152 + "€" + "a" * 152, "GSM-7", 306, (152, 153, 1)),
    ("15", "a" * 304 + "€", "GSM-7", 306, (153, 153)),
    ("16", "Ticket £25 / €30 [members] ~ save {10%} | reply ^STOP\\", "GSM-7", 63, (63,)),
    ("17", "Line one\r\nLine two", "GSM-7", 18, (18,)),
    ("18", "ç" * 70, "UCS-2", 70, (70,)),
    ("19", "ç" * 71, "UCS-2", 71, (67, 4)),
    ("20", "ç" * 134, "UCS-2", 134, (67, 67)),
    ("21", "ç" * 135, "UCS-2", 135, (67, 67, 1)),
    ("22", GRIN + "]" * 68, "UCS-2", 70, (70,)),
    ("23", GRIN + "]" * 69, "UCS-2", 71, (67, 4)),
    ("24", "a" * 69 + GRIN, "UCS-2", 71, (67, 4)),
    ("25", "a" * 66 + GRIN + "a" * 10, "UCS-2", 78, (66, 12)),
    ("26", "a" * 66 + GRIN + "a" * 66, "UCS-2", 134, (66, 67, 1)),
    ("27a", PARTY * 35, "UCS-2", 70, (70,)),
    ("27b", PARTY * 36, "UCS-2", 72, (66, 6)),
    ("28a", "Café", "GSM-7", 4, (4,)),
    ("28b", "Cafe\u0301", "UCS-2", 5, (5,)),
    ("29a", "Tab\there", "UCS-2", 8, (8,)),
    ("29b", "Price:\u00a0$10", "UCS-2", 10, (10,)),
    ("29c", "Use code `SPRING`", "UCS-2", 17, (17,)),
    ("30a", "ΔΦΓΛΩΠΨΣΘΞ", "GSM-7", 10, (10,)),
    ("30b", "αβγ", "UCS-2", 3, (3,)),
    ("31", "Hi José, your membership renews on 1 July. Reply STOP to opt out.", "GSM-7", 65, (65,)),
    ("32", "Hi Zoë, your membership renews on 1 July. Reply STOP to opt out.", "UCS-2", 64, (64,)),
    ("33a", "Hi Øyvind, the chapter dinner is Friday at 7pm. Text STOP to opt out", "GSM-7", 68, (68,)),
    ("33b", "Hi Björn & Søren, see you at the spring meet-up.", "GSM-7", 48, (48,)),
    ("34a", "Hi François, your ticket for Sunday is confirmed. Text STOP to end", "UCS-2", 66, (66,)),
    ("34b", "Hi Siobhán, thanks for renewing!", "UCS-2", 32, (32,)),
    (
        "35a",
        "Hi Zoë, the annual conference opens 12 March at the Riverside Centre. Your badge waits at desk B. "
        "Reply STOP to opt out.",
        "UCS-2",
        120,
        (67, 53),
    ),
    (
        "35b",
        "Hi Zoe, the annual conference opens 12 March at the Riverside Centre. Your badge waits at desk B. "
        "Reply STOP to opt out.",
        "GSM-7",
        120,
        (120,),
    ),
    (
        "36a",
        "Hi Ann, we’ve moved the chapter meeting to Thursday at 6pm in Room 14. See you! Reply STOP to opt out",
        "UCS-2",
        101,
        (67, 34),
    ),
    (
        "36b",
        "Hi Ann, we've moved the chapter meeting to Thursday at 6pm in Room 14. See you! Reply STOP to opt out",
        "GSM-7",
        101,
        (101,),
    ),
    ("37", "Go team " + THUMBS_MEDIUM, "UCS-2", 12, (12,)),
    ("38", "Warmest wishes from all of us " + FAMILY, "UCS-2", 38, (38,)),
    (
        "39",
        "Hi Sam, your membership renews on 1 July. Renew online in two minutes at "
        "https://members.example.org/renew?utm_source=sms&utm_medium=text&utm_campaign=july-renewals"
        "&member=000123 or reply STOP to opt out now",
        "GSM-7",
        207,
        (153, 54),
    ),
]


@pytest.mark.parametrize(("row", "body", "encoding", "units", "part_units"), WORKED_EXAMPLES)
def test_worked_examples_match_the_calculator(
    row: str, body: str, encoding: str, units: int, part_units: tuple[int, ...]
) -> None:
    count = count_segments(body)
    assert (count.encoding, count.units, count.part_units) == (encoding, units, part_units)
    assert count.segments == len(part_units)
    assert "".join(count.parts) == body


@pytest.mark.parametrize(
    ("body", "characters"),
    [
        ("Go team " + THUMBS_MEDIUM, 9),
        ("Warmest wishes from all of us " + FAMILY, 31),
        ("Line one\r\nLine two", 18),
        ("Cafe\u0301", 4),
        ("Flag \U0001f1fa\U0001f1f8", 6),
        ("{" * 81, 81),
    ],
)
def test_characters_are_grapheme_clusters_with_crlf_as_two(body: str, characters: int) -> None:
    assert count_segments(body).characters == characters


@pytest.mark.parametrize(
    ("body", "remaining"),
    [("Hi", 158), ("a" * 160, 0), ("a" * 161, 145), ("{" * 81, 143), ("ç" * 71, 63), ("ç", 69), (GRIN, 68)],
)
def test_remaining_in_segment_is_counted_in_the_last_part(body: str, remaining: int) -> None:
    assert count_segments(body).remaining_in_segment == remaining


def test_an_extension_character_is_never_split_at_a_part_boundary() -> None:
    count = count_segments("a" * 152 + "€" + "a" * 7)
    assert count.parts[0] == "a" * 152
    assert count.parts[1].startswith("€")


def test_an_emoji_at_position_67_moves_whole_into_part_two() -> None:
    count = count_segments("a" * 66 + GRIN + "a" * 10)
    assert count.parts == ("a" * 66, GRIN + "a" * 10)


@pytest.mark.parametrize(
    ("body", "offending"),
    [
        ("Hi Zoë, we’ve got a seat", ("ë", "’")),
        ("Cafe\u0301 and café", ("e\u0301",)),
        ("Go team " + THUMBS_MEDIUM + THUMBS_MEDIUM, (THUMBS_MEDIUM,)),
        ("All GSM {here} €", ()),
    ],
)
def test_ucs2_characters_lists_each_offender_once_in_order(body: str, offending: tuple[str, ...]) -> None:
    assert count_segments(body).ucs2_characters == offending


def test_explain_ucs2_names_offenders_and_their_smart_replacement() -> None:
    explained = {item.character: item for item in explain_ucs2("we’ve met Zoë’s team " + THUMBS_MEDIUM)}
    assert explained["’"].replacement == "'"
    assert explained["’"].occurrences == 2
    assert explained["’"].code_points == "U+2019"
    assert explained["’"].name == "RIGHT SINGLE QUOTATION MARK"
    assert explained["ë"].replacement is None
    assert explained[THUMBS_MEDIUM].replacement is None
    assert explained[THUMBS_MEDIUM].code_points == "U+1F44D U+1F3FD"


def test_smart_encoding_counts_the_replaced_text() -> None:
    body = "Hi Ann, we’ve moved the chapter meeting to Thursday at 6pm in Room 14. See you! Reply STOP to opt out"
    count = count_segments(body, smart_encoding=True)
    assert (count.encoding, count.segments) == ("GSM-7", 1)
    assert "we've" in count.body


def test_part_sizes_are_configurable_for_toll_free_senders() -> None:
    count = count_segments("a" * 161, gsm7=PartSizes(single=160, multi=152))
    assert count.part_units == (152, 9)


@pytest.mark.parametrize(
    ("body", "code", "position"),
    [
        ("", "body_empty", None),
        ("a" * 1601, "body_too_long", None),
        (GRIN * 801, "body_too_long", None),
        ("Hi \ud83d there", "body_lone_surrogate", 3),
        ("Hi\x00", "body_nul", 2),
        ("Hi\x1b there", "body_control_char", 2),
        ("Hi\x7f", "body_control_char", 2),
        ("Hi\x85", "body_control_char", 2),
        ("\x0b", "body_control_char", 0),
    ],
)
def test_bodies_twilio_would_refuse_raise_with_a_reason_code(body: str, code: str, position: int | None) -> None:
    with pytest.raises(InvalidBody) as caught:
        count_segments(body)
    assert caught.value.code == code
    assert caught.value.position == position


def test_a_body_smart_encoding_empties_is_refused() -> None:
    with pytest.raises(InvalidBody) as caught:
        count_segments("\u200b\u2060", smart_encoding=True)
    assert caught.value.code == "body_empty"


def test_longest_accepted_bodies() -> None:
    assert count_segments("a" * 1600).segments == 11
    assert count_segments(GRIN * 800).segments == 25
    assert count_segments("\t\n\f\r ok").encoding == "UCS-2"


# -- properties --------------------------------------------------------------------------------------

_ALLOWED = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), *range(0x7F, 0xA0)]),
)
_INTERESTING = st.sampled_from(
    [*GSM_BASIC, *GSM_EXTENSION, "ç", "ë", "’", "\u0301", "\u200d", "\ufe0f", GRIN, THUMBS_MEDIUM, FAMILY, "\r\n"]
)


def _within_twilio_limit(body: str) -> str:
    units = 0
    for index, char in enumerate(body):
        units += 2 if char > "\uffff" else 1
        if units > 1600:
            return body[:index]
    return body


_TEXT = st.lists(st.one_of(_INTERESTING, _ALLOWED), min_size=1, max_size=400).map("".join).map(_within_twilio_limit)


def _calculator_segments(clusters: list[str], encoding: str) -> list[list[str]]:
    """A literal port of the calculator's Segment/EncodedChar bit arithmetic, as an oracle."""

    def bits(cluster: str) -> int:
        if encoding == "UCS-2":
            return 16 * len(cluster.encode("utf-16-le")) // 2
        return 7 * (2 if cluster in GSM_EXTENSION else 1)

    segments: list[list[str]] = [[]]
    headers = [0]
    for cluster in clusters:
        if 1120 - headers[-1] - sum(map(bits, segments[-1])) < bits(cluster):
            segments.append([])
            headers.append(48)
            if headers[-2] == 0:
                headers[-2] = 48
                moved: list[str] = []
                while 1120 - 48 - sum(map(bits, segments[-2])) < 0:
                    moved.insert(0, segments[-2].pop())
                segments[-1].extend(moved)
        segments[-1].append(cluster)
    return segments


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_parts_match_a_literal_port_of_the_calculator(body: str) -> None:
    count = count_segments(body)
    oracle = _calculator_segments(graphemes(body), count.encoding)
    assert count.parts == tuple("".join(part) for part in oracle)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_parts_rejoin_to_the_body(body: str) -> None:
    count = count_segments(body)
    assert "".join(count.parts) == count.body == body
    assert sum(count.part_units) == count.units
    assert len(count.parts) == count.segments


@settings(max_examples=300, deadline=None)
@given(_TEXT, _TEXT)
def test_segments_never_decrease_as_a_body_grows(body: str, more: str) -> None:
    grown = _within_twilio_limit(body + more)
    assert count_segments(grown).segments >= count_segments(body).segments
