"""Tracked short links: detection, codes, validation and who clicked (libs/common/links.py)."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from libs.common.audience_rules import AudienceMember, classify_each
from libs.common.links import (
    CODE_LENGTH,
    CODE_PATTERN,
    LinkError,
    Shortener,
    check_base_url,
    check_links,
    classify_agent,
    client_network,
    find_links,
    new_code,
    preview_body,
)
from libs.common.merge import compile_template
from libs.common.segments import count_segments


@pytest.mark.parametrize(("body", "links"), [
    ("Renew at https://example.org/renew.", ["https://example.org/renew"]),
    ("See (https://example.org/a_(b)) now!", ["https://example.org/a_(b)"]),
    ("(details: http://example.org/x)", ["http://example.org/x"]),
    ("Two: https://a.org/1, and HTTPS://b.org/2?x=1&y=2#top", ["https://a.org/1", "HTTPS://b.org/2?x=1&y=2#top"]),
    ("No link here, nor www.example.org, nor mailto:x@y.org", []),
    ("Broken https:// alone", []),
])
def test_links_are_found_without_trailing_punctuation(body: str, links: list[str]) -> None:
    assert find_links(body) == links


def test_each_distinct_link_gets_its_own_code_and_repeats_share_one() -> None:
    codes = iter(["A" * 12, "B" * 12])
    body, links = Shortener("https://go.example.org/", codes=lambda: next(codes)).shorten(
        "Vote https://a.org/vote then https://b.org/x; again: https://a.org/vote.")
    assert body == ("Vote https://go.example.org/AAAAAAAAAAAA then https://go.example.org/BBBBBBBBBBBB; "
                    "again: https://go.example.org/AAAAAAAAAAAA.")
    assert [(link.code, link.url) for link in links] == [("A" * 12, "https://a.org/vote"), ("B" * 12, "https://b.org/x")]


def test_a_body_without_links_is_unchanged() -> None:
    assert Shortener("https://go.example.org").shorten("Hello, no links.") == ("Hello, no links.", ())


def test_codes_are_long_random_and_unique() -> None:
    codes = [new_code() for _ in range(20_000)]
    assert all(len(code) == CODE_LENGTH and CODE_PATTERN.fullmatch(code) for code in codes)
    assert len(set(codes)) == len(codes)
    # 64 alphabet symbols x 12 characters = 72 bits; every symbol shows up about equally often.
    counts = Counter("".join(codes))
    assert len(counts) == 64
    expected = len(codes) * CODE_LENGTH / 64
    assert all(abs(n - expected) < 6 * math.sqrt(expected) for n in counts.values())


def test_preview_has_the_length_a_member_gets() -> None:
    body = "Hi! Renew at https://example.org/renew?member=100234 today."
    shown = preview_body(body, "https://go.example.org")
    real, _ = Shortener("https://go.example.org").shorten(body)
    assert shown != body and len(shown) == len(real)
    assert count_segments(shown).units == count_segments(real).units
    assert re.fullmatch(r"Hi! Renew at https://go\.example\.org/[A-Za-z0-9_-]{12} today\.", shown)


@pytest.mark.parametrize(("body", "code"), [
    ("Open ftp://files.example.org/a", "link_scheme_invalid"),
    ("Tap javascript://alert(1)", "link_scheme_invalid"),
    ("Go https://bad_host!/x", "link_invalid"),
    ("Go https://example.org/" + "a" * 2100, "link_invalid"),
])
def test_links_that_cannot_be_tracked_are_refused(body: str, code: str) -> None:
    with pytest.raises(LinkError) as raised:
        check_links(body)
    assert raised.value.code == code


def test_good_links_pass_the_check() -> None:
    assert check_links("A https://example.org/a and http://127.0.0.1:8005/x.") == [
        "https://example.org/a", "http://127.0.0.1:8005/x"]


@pytest.mark.parametrize("base", ["ftp://go.example.org", "https://go.example.org/path", "go.example.org", "https://"])
def test_a_bad_short_link_base_is_refused(base: str) -> None:
    with pytest.raises(LinkError) as raised:
        check_base_url(base)
    assert raised.value.code == "short_link_base_invalid"


def test_a_good_base_loses_its_slash() -> None:
    assert check_base_url(" https://go.example.org/ ") == "https://go.example.org"


@pytest.mark.parametrize(("agent", "method", "expected"), [
    ("facebookexternalhit/1.1 Facebot Twitterbot/1.0", "GET", "preview_bot"),  # iMessage's preview
    ("WhatsApp/2.23.20.0 A", "GET", "preview_bot"),
    ("TelegramBot (like TwitterBot)", "GET", "preview_bot"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "GET", "preview_bot"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "GET", "preview_bot"),
    ("curl/8.5.0", "GET", "preview_bot"),
    ("python-httpx/0.27.0", "GET", "preview_bot"),
    ("", "GET", "preview_bot"),
    (None, "GET", "preview_bot"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
     "HEAD", "preview_bot"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
     "GET", "mobile"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", "GET", "mobile"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "GET", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15", "GET",
     "desktop"),
    ("SomethingNew/1.0", "GET", "other"),
])
def test_bots_are_told_from_people(agent: str | None, method: str, expected: str) -> None:
    assert classify_agent(agent, method) == expected


@pytest.mark.parametrize(("address", "network"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
    ("not-an-ip", None),
    (None, None),
])
def test_only_the_network_of_a_click_is_kept(address: str | None, network: str | None) -> None:
    assert client_network(address) == network


def test_a_tracked_audience_counts_segments_on_the_short_link() -> None:
    long_url = "https://example.org/" + "renewal-" * 20
    template = compile_template("Hi {{first_name}}, renew: " + long_url)
    members = [AudienceMember(str(i), f"+1202555{i:04d}", {"first_name": "Alex"}) for i in range(3)]
    plain = classify_each(members, template, start=0, default_country_prefix="+1", suppressed=(), bad_numbers=())
    tracked = classify_each(members, template, start=0, default_country_prefix="+1", suppressed=(), bad_numbers=(),
                       shortener=Shortener("https://go.example.org"))
    assert all(row.segments == 2 for row in plain)
    assert all(row.segments == 1 for row in tracked)
    codes = [row.links[0].code for row in tracked]
    assert len(set(codes)) == 3
    for row, code in zip(tracked, codes, strict=True):
        assert row.body == f"Hi Alex, renew: https://go.example.org/{code}"
        assert row.links[0].url == long_url
