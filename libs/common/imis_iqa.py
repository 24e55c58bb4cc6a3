"""iMIS IQA: every page of a query, typed values decoded, transient failures retried (docs/imis.md#running-an-iqa).

    client = ImisQueryClient(http, "https://members.example.org", "SMS_INTEGRATION", password)
    async for page in client.pages("$/Textpulse/SMS Audience", ["eq:REG"]):
        for row in page.rows:            # {"ID": "23145", "Mobile": "(415) 555-0134", "SmsOptOut": False, ...}
            ...

Paging follows the public clients: ``offset=NextOffset`` until ``HasNext`` is false, one request at a
time (ASI forbids parallel pulls). The server's ``Limit`` and ``NextOffset`` are trusted over what was
asked for; a page that claims more rows but brings none stops the run instead of looping.

Tokens and the translation of iMIS's answers are ``ImisSession``'s (``libs/common/imis.py``); a 401
(token expired or revoked mid-paging) renews the token and repeats that page, twice at the most.

Failures:

- retried with exponential back-off, up to ``RetryPolicy.attempts`` tries per request: every
  ImisUnavailable (timeouts and connection errors, 5xx, 429 with ``Retry-After`` honoured up to the cap,
  and a 200 whose body is not an IQA page). When the tries run out: DependencyUnavailable
  ``imis_unavailable``.
- PermanentError: credentials refused at /token (``imis_credentials_rejected``), still 401 after fresh
  tokens (``imis_unauthorized``), 403 (``iqa_forbidden``), 404: no such query or not available to REST
  (``iqa_not_found``), other 4xx such as a refused parameter (``iqa_rejected``), a page that is
  JSON but has no ``Items`` (``iqa_bad_response``) and one that claims more rows but brings none
  (``iqa_paging_stuck``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import httpx

from libs.common.backoff import retry_delay
from libs.common.errors import DependencyUnavailable, PermanentError
from libs.common.imis import ImisSession, ImisUnavailable, Refusals, json_object
from libs.common.imis_values import decode_row
from libs.common.logging import get_logger

__all__ = ["MAX_PAGE_SIZE", "ImisQueryClient", "Page", "RetryPolicy"]

log = get_logger(__name__)

MAX_PAGE_SIZE = 500  # the largest page iMIS serves (docs/imis.md#running-an-iqa)
# One IQA answer as read: (offset, raw rows, total, offset of the next page or None after the last).
RawPage: TypeAlias = tuple[int, list[Any], int | None, int | None]
_IQA_REFUSALS = Refusals(forbidden="iqa_forbidden", not_found="iqa_not_found", rejected="iqa_rejected",
                         not_found_hint=" (does the IQA exist and is it available to REST?)")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries per request (the first included), waiting ``base_s * 2**n`` (at most ``cap_s``)."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap_s)
        return retry_delay(failures, base_s=self.base_s, cap_s=self.cap_s, jitter=random.random())


@dataclass(frozen=True, slots=True)
class Page:
    """One IQA page: its rows decoded to ``{alias: plain value}``, plus where it sits in the result."""

    rows: list[dict[str, Any]]
    offset: int
    total: int | None


class ImisQueryClient:
    """One iMIS site and user. Not safe for concurrent paging (iMIS forbids it anyway)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        username: str,
        password: str,
        *,
        retry: RetryPolicy = RetryPolicy(),
        page_size: int = MAX_PAGE_SIZE,
        read_ahead: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = ImisSession(http, base_url, username, password, renewals=2, refusals=_IQA_REFUSALS,
                                    clock=clock)
        self._retry = retry
        self._page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._read_ahead = max(1, read_ahead)
        self._sleep = sleep

    async def pages(self, query_name: str, parameters: Sequence[str] = ()) -> AsyncGenerator[Page, None]:
        """Yield every page of the IQA at ``query_name`` (``$/...``), first to last; see the module docstring.

        One request is in flight at a time, as ASI asks, but pages are requested ahead of the caller: a
        reader task asks for the next page as soon as the last one's paging keys are read, and keeps up
        to ``read_ahead`` pages waiting, so iMIS prepares pages while the caller works on earlier ones
        (a stage written to PostgreSQL every few pages, say). Rows are decoded in slices with the loop let
        in between, so the reader's next request goes out and is read meanwhile. (A worker thread was
        slower: GIL hand-offs stall the loop.) Errors reach the caller at the page they happened on.
        """
        waiting: asyncio.Queue[RawPage | Exception | None] = asyncio.Queue(self._read_ahead)
        reader = asyncio.create_task(self._read_pages(query_name, parameters, waiting))
        try:
            while (page := await waiting.get()) is not None:
                if isinstance(page, Exception):
                    raise page
                offset, items, total, _ = page
                yield Page(await _decode_rows(items), offset, total)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read_pages(self, query_name: str, parameters: Sequence[str],
                          waiting: asyncio.Queue[RawPage | Exception | None]) -> None:
        """Every page, in order, into ``waiting``; then None, or the error that stopped the paging."""
        offset: int | None = 0
        try:
            while offset is not None:
                page = await self._page(query_name, parameters, offset)
                if page[3] is not None and not page[1]:
                    raise PermanentError(
                        "iqa_paging_stuck", f"iMIS said more rows follow offset {page[0]} but sent none")
                await waiting.put(page)
                offset = page[3]
        except Exception as exc:  # handed to the caller, who raises it where the page would have been
            await waiting.put(exc)
            return
        await waiting.put(None)

    async def _page(self, query_name: str, parameters: Sequence[str], offset: int) -> RawPage:
        params = [("QueryName", query_name), *(("Parameter", p) for p in parameters),
                  ("offset", str(offset)), ("limit", str(self._page_size))]
        return _read_page(await self._get("/api/IQA", params), offset)

    async def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        failures = 0
        while True:
            try:
                response = await self._session.request("GET", path, params=params)
                if response.status_code == 401:
                    raise PermanentError("imis_unauthorized", f"GET {path}: still 401 with fresh tokens; "
                                         "check the iMIS user's rights to this query")
                self._session.raise_for(response, f"GET {path}")
                return json_object(response, f"GET {path}")
            except ImisUnavailable as exc:
                failures += 1
                if failures >= self._retry.attempts:
                    raise DependencyUnavailable(
                        "imis_unavailable", f"iMIS did not answer after {failures} tries: {exc.message}") from None
                delay = self._retry.delay(failures, exc.retry_after)
                log.warning("imis.request_retried", extra={"path": path, "failures": failures, "code": exc.code,
                                                           "error": exc.message, "delay_s": round(delay, 2)})
                await self._sleep(delay)


def _read_page(body: dict[str, Any], asked_offset: int) -> RawPage:
    items = body.get("Items")
    values = items.get("$values") if isinstance(items, dict) else items
    if not isinstance(values, list):
        raise PermanentError("iqa_bad_response", "the IQA answer has no Items.$values")
    stated_offset, stated_total = body.get("Offset"), body.get("TotalCount")
    offset = stated_offset if isinstance(stated_offset, int) else asked_offset
    total = stated_total if isinstance(stated_total, int) else None
    has_next = body.get("HasNext")
    if not isinstance(has_next, bool):  # an envelope without HasNext: fall back on the totals
        has_next = total is not None and offset + len(values) < total
    if not has_next:
        return offset, values, total, None
    stated_next = body.get("NextOffset")
    next_offset = stated_next if isinstance(stated_next, int) and stated_next > offset else offset + len(values)
    return offset, values, total, next_offset


async def _decode_rows(items: list[Any], slice_size: int = 50) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(items), slice_size):
        rows += [decode_row(item) for item in items[start : start + slice_size] if isinstance(item, dict)]
        await asyncio.sleep(0)
    return rows
