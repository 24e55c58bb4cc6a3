"""The member data set: reproducible, fast, and as messy as real AMS data."""

from __future__ import annotations

from collections import Counter

import phonenumbers

from libs.common.segments import count_segments
from standins.members import SMALL, generate
from standins.members.dataset import FULL_SIZE, iter_members


def test_same_seed_same_members_and_prefixes_agree() -> None:
    assert generate(7, 500) == generate(7, 500)
    assert generate(7, 2_000)[:500] == generate(7, 500)
    assert generate(8, 500) != generate(7, 500)


def test_the_full_set_has_every_shape() -> None:  # its speed: python -m bench.inputs
    members = generate(count=FULL_SIZE)

    assert len(members) == FULL_SIZE and len({m.id for m in members}) == FULL_SIZE
    shapes = Counter(m.mobile_shape for m in members)
    for shape in ("paren", "dots", "digits", "plus_spaced", "intl_001", "extension", "uk_landline", "letters",
                  "blank", "null", "typo"):
        assert shapes[shape] > 100, shape
    assert any(m.mobile == "" for m in members) and any(m.mobile is None for m in members)
    shared = Counter(m.mobile_e164 for m in members if m.household_of and m.mobile_e164)
    assert len(shared) > 1_000  # households sharing one phone
    assert sum(m.is_lapsed for m in members) > 5_000


def test_names_force_ucs2_in_a_share_of_merged_texts() -> None:
    encodings = Counter(
        count_segments(f"Hi {m.informal_name}, your renewal is due. Reply STOP to opt out.").encoding
        for m in iter_members(count=3_000)
    )
    emoji = [m.informal_name for m in generate(count=20_000) if any(ord(c) > 0xFFFF for c in m.informal_name)]

    assert 0.05 < encodings["UCS-2"] / 3_000 < 0.5
    assert emoji  # a few nicknames carry an emoji


def test_generated_e164_answers_are_valid_numbers() -> None:
    for member in iter_members(count=2_000):
        if member.mobile_e164 and member.mobile_e164.startswith("+1"):
            assert phonenumbers.is_possible_number(phonenumbers.parse(member.mobile_e164)), member


def test_small_fixture_covers_each_case_once() -> None:
    assert len(SMALL) == 16
    assert sum(1 for m in SMALL if m.mobile_e164) == 12
    assert {m.mobile_shape for m in SMALL} >= {"paren", "dots", "digits", "uk_landline", "intl_001", "extension",
                                               "blank", "null", "letters", "uk_national"}
    assert [m.id for m in SMALL if m.household_of] == ["23153", "23157"]
    assert sum(m.is_lapsed for m in SMALL) == 2
