"""Smart Encoding: the replacements of docs/segments.md#smart-encoding and the GSM-7 guarantee they give."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.segments import GSM_BASIC, GSM_EXTENSION, count_segments, smart_encode
from libs.common.smart_encoding import mapped_characters


@pytest.mark.parametrize(
    ("body", "encoded"),
    [
        ("we’ve", "we've"),
        ("‘quoted’ “twice” „low‟ «guillemets»", '\'quoted\' "twice" "low" "guillemets"'),
        ("use `code`", "use 'code'"),
        ("9–5 — or ― later", "9-5 - or - later"),
        ("• item", "- item"),
        ("wait…", "wait..."),
        ("Price:\u00a0$10", "Price:  $10"),
        ("a\u2028b\u2029c", "a b c"),
        ("zero\u200bwidth\u2060joiner\ufeff", "zerowidthjoiner"),
        ("Tab\there", "Tab       here"),
        ("Wow‼", "Wow!!"),
        ("½ ¼ ¾ ÷ ⁄", "1/2 1/4 3/4 / /"),
        ("‹a›", ">a<"),
        ("ＴＥＸＴ！ ＃１", "TEXT! #1"),
        ("ᴀʙᴄ", "ABC"),
        ("﹖﹗", "?!"),
        ("‚﹐，、", ",,,,"),
    ],
)
def test_replacements(body: str, encoded: str) -> None:
    assert smart_encode(body) == encoded


@pytest.mark.parametrize("body", ["Zoë", "Siobhán", "François", "Go team \U0001f44d\U0001f3fd", "αβγ", "e\u0301"])
def test_accents_and_emoji_are_left_alone(body: str) -> None:
    assert smart_encode(body) == body
    assert count_segments(body, smart_encoding=True).encoding == "UCS-2"


def test_every_replacement_is_gsm_text() -> None:
    gsm = set(GSM_BASIC + GSM_EXTENSION)
    for char in mapped_characters():
        assert set(smart_encode(char)) <= gsm, f"U+{ord(char):04X} {unicodedata.name(char, '')}"


def test_one_curly_apostrophe_doubles_the_bill_and_smart_encoding_undoes_it() -> None:
    body = "Hi Ann, we’ve moved the chapter meeting to Thursday at 6pm in Room 14. See you! Reply STOP to opt out"
    assert count_segments(body).segments == 2
    assert count_segments(body, smart_encoding=True).segments == 1


_SENDABLE_MAPPED = sorted(c for c in mapped_characters() if unicodedata.category(c) != "Cc" or c == "\t")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*GSM_BASIC, *GSM_EXTENSION, *_SENDABLE_MAPPED]), min_size=1, max_size=200))
def test_body_of_gsm_and_mapped_characters_becomes_gsm7(chars: list[str]) -> None:
    body = "".join(chars)
    if not smart_encode(body):
        return  # only invisible characters: refused as empty, tested elsewhere
    assert count_segments(body, smart_encoding=True).encoding == "GSM-7"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=GSM_BASIC + GSM_EXTENSION, min_size=1, max_size=300))
def test_gsm_text_is_unchanged(body: str) -> None:
    assert smart_encode(body) == body
