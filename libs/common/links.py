"""Tracked short links: finding links in a body, giving each recipient's link a short code, and telling
people from link-preview bots. Pure: no I/O.

    >>> shortener = Shortener("https://go.example.org")
    >>> body, links = shortener.shorten("Renew at https://example.org/renew?id=7.")
    >>> body == f"Renew at https://go.example.org/{links[0].code}."
    True

A code is :data:`CODE_LENGTH` characters of ``secrets.token_urlsafe``: 72 random bits, so a member cannot
guess another's link, and every short link of one base has the same length, which is what segment
counts and the composer's preview use (:func:`preview_body`). The same URL twice in one body gets one code.
Links are found in the rendered body (so a merge field inside a URL is part of that member's link);
only ``http://`` and ``https://`` links are tracked. :func:`check_links` refuses any other scheme when a
tracked campaign is saved, with :class:`LinkError` (``link_scheme_invalid``, ``link_invalid``).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal
from urllib.parse import urlsplit

from libs.common.errors import PermanentError

__all__ = ["CODE_LENGTH", "AgentClass", "LinkError", "Shortener", "TrackedLink", "check_base_url", "check_links",
           "classify_agent", "client_network", "find_links", "new_code", "preview_body", "short_link_length"]

CODE_BYTES: Final = 9  # 72 bits
CODE_LENGTH: Final = 12  # token_urlsafe's base64 of 9 bytes, no padding
CODE_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{12}")
URL_MAX_LENGTH: Final = 2048
# What the composer's preview shows in place of a member's code: the same length as every real one.
PREVIEW_CODE: Final = "Xy3kP9qLm2Tb"

_LINK = re.compile(r"https?://[^\s<>\"{}|\\^`]+", re.IGNORECASE)
_ANY_SCHEME = re.compile(r"\b([a-z][a-z0-9+.-]{1,31})://\S*", re.IGNORECASE)
_TRAILING = ".,;:!?'\""
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", re.IGNORECASE)


class LinkError(PermanentError):
    """A link in a tracked body, or a short-link base URL, that cannot be used."""


@dataclass(frozen=True, slots=True)
class TrackedLink:
    code: str
    url: str


def new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def find_links(body: str) -> list[str]:
    """The http(s) links in ``body``, in order, without the sentence punctuation that follows them."""
    return [match[1] for match in _spans(body)]


def _spans(body: str) -> list[tuple[int, str]]:
    found = []
    for match in _LINK.finditer(body):
        url = match.group().rstrip(_TRAILING)
        # A closing parenthesis belongs to the link only when the link opened one: "(see https://a.org/x)".
        while url.endswith(")") and url.count("(") < url.count(")"):
            url = url[:-1].rstrip(_TRAILING)
        if urlsplit(url).hostname:
            found.append((match.start(), url))
    return found


def check_links(body: str) -> list[str]:
    """The links a tracked body would shorten; raises :class:`LinkError` for a link that is not http(s)
    (``link_scheme_invalid``) or has no valid host or is too long (``link_invalid``)."""
    for match in _ANY_SCHEME.finditer(body):
        if match.group(1).lower() not in ("http", "https"):
            raise LinkError("link_scheme_invalid",
                            f"'{match.group()[:80]}' is not an http or https link; only those can be tracked")
    links = find_links(body)
    for url in links:
        host = urlsplit(url).hostname or ""
        if len(url) > URL_MAX_LENGTH or not (_HOST.match(host) or _is_ip(host)):
            raise LinkError("link_invalid", f"'{url[:80]}' is not a link a member's phone can open")
    return links


def check_base_url(base: str) -> str:
    """An organisation's short-link base (``https://go.example.org``, or ``http://127.0.0.1:8005`` in the
    demo): scheme and host, no path. Returns it without a trailing slash; raises :class:`LinkError`."""
    stripped = base.strip().rstrip("/")
    parts = urlsplit(stripped)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise LinkError("short_link_base_invalid",
                        f"'{base[:80]}' must be http(s)://host[:port], without a path (e.g. https://go.example.org)")
    return stripped


class Shortener:
    """Replaces each link of a rendered body by ``<base>/<code>``, a new code per distinct URL."""

    def __init__(self, base: str, codes: Callable[[], str] = new_code) -> None:
        self.base = check_base_url(base)
        self._codes = codes

    def shorten(self, body: str) -> tuple[str, tuple[TrackedLink, ...]]:
        spans = _spans(body)
        if not spans:
            return body, ()
        by_url: dict[str, TrackedLink] = {}
        pieces, done = [], 0
        for start, url in spans:
            link = by_url.get(url)
            if link is None:
                link = by_url[url] = TrackedLink(self._codes(), url)
            pieces += [body[done:start], f"{self.base}/{link.code}"]
            done = start + len(url)
        pieces.append(body[done:])
        return "".join(pieces), tuple(by_url.values())


def short_link_length(base: str) -> int:
    """The characters a tracked link takes in a member's text: ``<base>/<code>``.

    >>> short_link_length("https://go.example.org")
    35
    """
    return len(base) + 1 + CODE_LENGTH


def preview_body(body: str, base: str) -> str:
    """``body`` as a member sees it: every link a short link of the real length (:data:`PREVIEW_CODE`)."""
    return Shortener(base, codes=lambda: PREVIEW_CODE).shorten(body)[0]


# -- who clicked ------------------------------------------------------------------------------------

AgentClass = Literal["preview_bot", "mobile", "desktop", "other"]

# Link-preview fetchers of messaging apps, carriers' and mail scanners, crawlers and HTTP libraries:
# they open a link without a person choosing to. Matched anywhere in the lower-cased User-Agent ("bot"
# covers Googlebot, Twitterbot, TelegramBot, Slackbot, Discordbot, Applebot, facebot...).
_BOT_TOKENS: Final = (
    "bot", "crawler", "spider", "preview", "facebookexternalhit", "whatsapp", "slack", "discord", "linkedin",
    "embedly", "pinterest", "viber", "snapchat", "google-pagerenderer", "googleother", "yahoo", "vkshare",
    "iframely", "outbrain", "curl/", "wget/", "python-", "go-http-client", "okhttp", "java/", "libwww",
    "httpclient", "axios", "node-fetch", "headlesschrome", "phantomjs", "scanner", "proofpoint", "mimecast",
    "barracuda",
)
_MOBILE_TOKENS: Final = ("mobile", "android", "iphone", "ipad", "ipod", "windows phone", "kaios")
_DESKTOP_TOKENS: Final = ("windows nt", "macintosh", "x11", "cros", "linux x86_64")


def classify_agent(user_agent: str | None, method: str = "GET") -> AgentClass:
    """``preview_bot`` for a bot, a library, a HEAD request or no User-Agent at all; else the device kind."""
    if not user_agent or method.upper() == "HEAD":
        return "preview_bot"
    return _classify(user_agent)


@lru_cache(maxsize=4096)  # a campaign's clicks come from a few hundred distinct User-Agents
def _classify(user_agent: str) -> AgentClass:
    agent = user_agent.lower()
    if not agent.strip() or any(token in agent for token in _BOT_TOKENS):
        return "preview_bot"
    if any(token in agent for token in _MOBILE_TOKENS):
        return "mobile"
    if any(token in agent for token in _DESKTOP_TOKENS):
        return "desktop"
    return "other"


@lru_cache(maxsize=16_384)
def client_network(address: str | None) -> str | None:
    """The network a click came from, never the address: IPv4 to /24, IPv6 to /48; None if unparsable."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
