"""``GET /<code>``: a tracked short link answered with a 302 to its URL, and the click recorded.

The click is handed to the Kafka producer's batch for ``link-clicks`` and the member is redirected at once:
waiting for the broker's acknowledgement would bound the redirects a process answers by its round trips.
A click the producer refuses, or the broker does not acknowledge, is written to PostgreSQL directly
instead; on SIGTERM :meth:`Redirector.drain` waits for every click in flight. What a ``kill -9`` can lose is
the producer's last few milliseconds of clicks (its linger), never a redirect. An unknown code, or one past its
``expires_at``, gets a short plain page (404, 410), never an error trace; so does a lookup while PostgreSQL
is away (503 with Retry-After). Codes are looked up once and kept
in a bounded in-process cache for :data:`CACHE_TTL_S`, so a campaign's burst of clicks reads PostgreSQL
once per recipient, and the codes missed while a lookup is in flight are looked up together by the next
(``ReadTogether``): one statement per round trip when a campaign's first clicks all miss the cache.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.events import LinkClicked
from libs.common.kafka import EventPublisher
from libs.common.links import CODE_PATTERN, classify_agent, client_network
from libs.common.logging import get_logger
from libs.common.read_together import ReadTogether
from libs.common.topics import LINK_CLICKS
from services.links.db import LinkStore, ShortLink

log = get_logger(__name__)

CACHE_TTL_S: Final = 300.0
CACHE_SIZE: Final = 100_000
LOOKUP_BATCH_MAX: Final = 500
_COMMON: Final = [(b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"), (b"x-robots-tag", b"noindex")]
_REDIRECT_HEADERS: Final = [*_COMMON, (b"content-length", b"0")]
# What a URL keeps as it is in the Location header (Starlette's RedirectResponse quotes the same way).
_URL_SAFE: Final = ":/%#?=@[]!$&'()*+,;"
_PAGE: Final = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
                "<meta name=\"viewport\" content=\"width=device-width\"></head>"
                "<body style=\"font-family:sans-serif;margin:3em auto;max-width:30em\"><h1>{title}</h1>"
                "<p>{text}</p></body></html>")
UNKNOWN_PAGE: Final = _PAGE.format(title="Link not found",
                                   text="This link is not known. Check that it was copied whole from your text.",
                                   ).encode()
EXPIRED_PAGE: Final = _PAGE.format(title="Link expired",
                                   text="This link has expired. Contact the organisation that sent it.").encode()
UNAVAILABLE_PAGE: Final = _PAGE.format(title="Try again in a minute",
                                       text="This link cannot be opened right now. Please try again shortly.").encode()
_PAGE_HEADERS: Final = [*_COMMON, (b"content-type", b"text/html; charset=utf-8")]
_UNAVAILABLE_HEADERS: Final = [*_PAGE_HEADERS, (b"retry-after", b"30")]

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


class _Cache:
    """Short links by code, least recently used first out, each kept at most ``ttl`` seconds."""

    def __init__(self, size: int, ttl: float) -> None:
        self._size, self._ttl = size, ttl
        self._entries: OrderedDict[str, tuple[float, ShortLink]] = OrderedDict()

    def get(self, code: str, now: float) -> ShortLink | None:
        entry = self._entries.get(code)
        if entry is None or now - entry[0] > self._ttl:
            return None
        self._entries.move_to_end(code)
        return entry[1]

    def put(self, link: ShortLink, now: float) -> None:
        self._entries[link.code] = (now, link)
        self._entries.move_to_end(link.code)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


class Redirector:
    def __init__(self, store: LinkStore, publisher: EventPublisher, *, publish_timeout_s: float = 2.0) -> None:
        self._store = store
        self._publisher = publisher
        self._cache = _Cache(CACHE_SIZE, CACHE_TTL_S)
        self._lookups: ReadTogether[str, ShortLink | None] = ReadTogether(store.find_many,
                                                                          batch_max=LOOKUP_BATCH_MAX)
        self._in_flight: set[asyncio.Future[Any]] = set()
        self.publish_timeout_s = publish_timeout_s

    async def answer(self, code: str, user_agent: str | None, method: str, client_host: str | None) -> Answer:
        """The answer to ``method /<code>``; a click is recorded for every redirect."""
        try:
            link = await self._link(code) if CODE_PATTERN.fullmatch(code) else None
        except Exception as exc:  # noqa: BLE001 - PostgreSQL away: a plain page, never a trace
            log.warning("link.lookup_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            return 503, _UNAVAILABLE_HEADERS, UNAVAILABLE_PAGE
        if link is None:
            return 404, _PAGE_HEADERS, UNKNOWN_PAGE
        if link.expires_at <= datetime.now(UTC):
            return 410, _PAGE_HEADERS, EXPIRED_PAGE
        await self._record(LinkClicked(
            org_id=link.org_id, run_id=link.run_id, recipient_id=link.recipient_id, code=code,
            agent_class=classify_agent(user_agent, method), client_network=client_network(client_host)))
        return 302, [*_REDIRECT_HEADERS, (b"location", quote(link.url, safe=_URL_SAFE).encode("latin-1"))], b""

    async def _link(self, code: str) -> ShortLink | None:
        now = time.monotonic()
        link = self._cache.get(code, now)
        if link is None:
            link = await self._lookups.get(code)
            if link is not None:
                self._cache.put(link, now)
        return link

    async def _record(self, click: LinkClicked) -> None:
        try:
            acked = await asyncio.wait_for(self._publisher.enqueue(LINK_CLICKS, click, key=str(click.run_id)),
                                           self.publish_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any Kafka failure: PostgreSQL takes the click instead
            log.warning("click.publish_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            await self._store_directly(click)
            return
        self._in_flight.add(acked)
        acked.add_done_callback(functools.partial(self._acknowledged, click))

    def _acknowledged(self, click: LinkClicked, acked: asyncio.Future[Any]) -> None:
        self._in_flight.discard(acked)
        if acked.cancelled() or acked.exception() is not None:
            log.warning("click.publish_failed", extra={"error": repr(None if acked.cancelled() else acked.exception())})
            stored = asyncio.ensure_future(self._store_directly(click))
            self._in_flight.add(stored)
            stored.add_done_callback(self._in_flight.discard)

    async def _store_directly(self, click: LinkClicked) -> None:
        try:
            await self._store.record_click(click)
        except Exception as exc:  # noqa: BLE001 - the member is redirected even when the click is lost
            log.error("click.lost", extra={"run_id": str(click.run_id), "error": f"{type(exc).__name__}: {exc}"[:300]})

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait (at most ``timeout_s``) until every click handed to Kafka is acknowledged or stored."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.wait(set(self._in_flight), timeout=max(0.0, deadline - time.monotonic()))


class ShortLinks:
    """The service's ASGI app: ``GET``/``HEAD /<code>`` answered here (no middleware, routing or response
    objects on the hot path); the ``passthrough`` paths (``/healthz``, ``/readyz``) and other methods go on
    to ``app``."""

    def __init__(self, app: ASGIApp, redirector: Redirector, passthrough: frozenset[str]) -> None:
        self._fallback = app
        self._redirector = redirector
        self._passthrough = passthrough

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._passthrough or scope["method"] not in ("GET", "HEAD"):
            await self._fallback(scope, receive, send)
            return
        user_agent = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"user-agent"), None)
        client = scope.get("client")
        status, headers, body = await self._redirector.answer(scope["path"][1:], user_agent, scope["method"],
                                                              client[0] if client else None)
        if body:
            headers = [*headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
