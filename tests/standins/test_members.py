"""The member data set: reproducible, fast, and as messy as real AMS data."""

from __future__ import annotations

import hashlib
from collections import Counter

import phonenumbers

from libs.common.segments import count_segments
from standins.members import SMALL, generate
from standins.members.dataset import FULL_SIZE, Member, iter_members


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


def test_addresses_are_seeded_spread_over_the_states_and_do_not_change_the_other_fields() -> None:
    members = generate(count=20_000)
    assert [m.address for m in generate(count=500)] == [m.address for m in members[:500]]
    us = Counter(m.address.state for m in members if m.address and m.address.country_code == "US")
    for state in ("FL", "OK", "MD", "TX", "AK", "HI", "KS", "NE", "TN", "ID", "OR", "CA", "NY"):
        assert us[state] > 20, state
    assert 0.02 < sum(m.address is None for m in members) / len(members) < 0.08
    assert 5 < us[""] < 400  # an address typed without its state
    countries = Counter(m.address.country_code for m in members if m.address)
    assert countries["CA"] > 500 and countries["GB"] > 100 and countries["AU"] > 50
    assert {m.address.state for m in members if m.address and m.address.country_code == "CA"} == {"ON", "QC", "BC"}
    # Some members kept a number from another state; a share live where their area code is.
    area = {m.id: (m.mobile_e164 or "")[2:5] for m in members if (m.mobile_e164 or "").startswith("+1")}
    florida = [m for m in members if m.address and m.address.state == "FL" and m.id in area]
    assert sum(area[m.id] in ("305", "407") for m in florida) > 15
    assert sum(area[m.id] in ("213", "310", "408", "415", "916") for m in florida) > 20
    assert all(m.address.postal_code and m.address.city for m in members if m.address)


def test_the_addresses_stream_leaves_every_other_field_as_it_was() -> None:
    # The digest of the first 2,000 members' other fields as generated before members had addresses.
    others = [tuple(m)[: len(Member._fields) - 1] for m in generate(count=2_000)]
    assert Member._fields[-1] == "address"
    assert hashlib.sha256(repr(others).encode()).hexdigest() == (
        "201ed28785891140baee289a7d54c1e37b2a80552f8544aa423717b03c4c9bf3")
