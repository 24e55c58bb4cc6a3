"""iMIS IQA: every page of a query, typed values decoded, transient failures retried (docs/imis.md#running-an-iqa).

    endpoint = await ImisQueryClient(http, base, user, password).detect_endpoint()   # at link time
    client = ImisQueryClient(http, "https://members.example.org", "SMS_INTEGRATION", password, endpoint=endpoint)
    async for page in client.pages("$/Textpulse/SMS Audience", ["eq:REG"], row_key="ID"):
        for row in page.rows:            # {"ID": "23145", "Mobile": "(415) 555-0134", "SmsOptOut": False, ...}
            ...

Two endpoints run a query (docs/imis.md#the-query-endpoint): ``/api/Query`` (iMIS 20.3.77 and later, flat
rows, about a fifth of the JSON) and the deprecated ``/api/IQA``. :meth:`ImisQueryClient.detect_endpoint`
says which one the site has; ``endpoint`` picks it. Both take the same parameters and page the same way.

Paging follows the public clients: ``offset=NextOffset`` until ``HasNext`` is false, one request at a
time (ASI forbids parallel pulls). The server's ``Limit`` and ``NextOffset`` are trusted over what was
asked for; a page that claims more rows but brings none stops the run instead of looping.

Offsets count positions in the result as it is *now*: a member who leaves the result (opts out in iMIS)
while earlier pages are read would shift every later row one place back, and plain offset paging would
skip one; one who joins would be read twice. So each page after the first is asked for from ``overlap``
rows before ``NextOffset``, and rows are handed on only after the last row already handed on (found by
``row_key``, the member id): every row of the result arrives exactly once, whatever moved before the
page. When none of those rows is found (more than the overlap moved, or the IQA has no stable sort), the
page is asked again with a wider overlap, up to a whole page, then ``IqaResultShifted`` (a RetryableError:
the run is read again from the start).

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
- IqaResultShifted (``iqa_result_shifted``): the result moved by more than a page between two pages.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import httpx

from libs.common.backoff import retry_delay
from libs.common.errors import DependencyUnavailable, PermanentError, RetryableError
from libs.common.imis import ImisSession, ImisUnavailable, Refusals, error_text, json_object
from libs.common.imis_values import decode_row, plain_value
from libs.common.logging import get_logger

__all__ = ["ENDPOINTS", "MAX_PAGE_SIZE", "Endpoint", "ImisQueryClient", "IqaResultShifted", "Page", "RetryPolicy"]

log = get_logger(__name__)

MAX_PAGE_SIZE = 500  # the largest page iMIS serves (docs/imis.md#running-an-iqa)
OVERLAP = 10  # rows asked for again before each page, to find where the last page ended
Endpoint = Literal["query", "iqa"]
ENDPOINTS: dict[Endpoint, str] = {"query": "/api/Query", "iqa": "/api/IQA"}
# What an iMIS without the Query service answers for /api/Query: ASP.NET Web API's unmatched-route message,
# or iMIS's own for an entity it has no service for (docs/imis.md#the-query-endpoint).
_NO_ROUTE = ("no http resource was found", "there is no service defined")
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


class IqaResultShifted(RetryableError):
    """The query's result moved by more than a page between two pages: read it again from the start."""


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
        endpoint: Endpoint = "iqa",
        overlap: int = OVERLAP,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = ImisSession(http, base_url, username, password, renewals=2, refusals=_IQA_REFUSALS,
                                    clock=clock)
        self._retry = retry
        self._page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._read_ahead = max(1, read_ahead)
        self._path = ENDPOINTS[endpoint]
        self._overlap = max(1, min(overlap, self._page_size - 1))
        self._sleep = sleep

    async def detect_endpoint(self) -> Endpoint:
        """``query`` when the site serves ``/api/Query``, else ``iqa``; the credentials are checked on the way.

        The probe asks ``/api/Query`` for the root folder (``$/``, never a query): a site with the Query
        service answers a page or a refusal of its own (a 404 "no query", a 400), one without it the
        unmatched-route 404. Raises the session's errors (refused credentials, iMIS unreachable)."""
        params = [("QueryName", "$/"), ("offset", "0"), ("limit", "1")]
        response = await self._session.request("GET", ENDPOINTS["query"], params=params)
        if response.status_code == 401:
            raise PermanentError("imis_unauthorized", "GET /api/Query: still 401 with a fresh token")
        if response.status_code >= 500 or response.status_code == 429:
            self._session.raise_for(response, "GET /api/Query")
        if response.status_code in (404, 405, 501) and error_text(response).lower().startswith(_NO_ROUTE):
            return "iqa"
        if response.status_code in (405, 501):
            return "iqa"
        return "query"

    async def pages(self, query_name: str, parameters: Sequence[str] = (), *,
                    row_key: str = "ID") -> AsyncGenerator[Page, None]:
        """Yield every page of the IQA at ``query_name`` (``$/...``), first to last; see the module docstring.
        ``row_key`` is the column that tells rows apart (the member id; matched without regard to case).

        One request is in flight at a time, as ASI asks, but pages are requested ahead of the caller: a
        reader task asks for the next page as soon as the last one's paging keys are read, and keeps up
        to ``read_ahead`` pages waiting, so iMIS prepares pages while the caller works on earlier ones
        (a stage written to PostgreSQL every few pages, say). Rows are decoded in slices with the loop let
        in between, so the reader's next request goes out and is read meanwhile. (A worker thread was
        slower: GIL hand-offs stall the loop.) Errors reach the caller at the page they happened on.
        """
        waiting: asyncio.Queue[RawPage | Exception | None] = asyncio.Queue(self._read_ahead)
        reader = asyncio.create_task(self._read_pages(query_name, parameters, row_key.lower(), waiting))
        try:
            while (page := await waiting.get()) is not None:
                if isinstance(page, Exception):
                    raise page
                offset, items, total, _ = page
                yield Page(await _decode_rows(items), offset, total)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read_pages(self, query_name: str, parameters: Sequence[str], row_key: str,
                          waiting: asyncio.Queue[RawPage | Exception | None]) -> None:
        """Every page, in order, into ``waiting``, each row once; then None, or the error that stopped the paging."""
        offset: int | None = 0
        last: list[Any] = []  # identities of the last rows handed on, oldest first
        try:
            while offset is not None:
                start, page = await self._fresh_page(query_name, parameters, offset, last, row_key)
                rows = page[1][start:]
                if page[3] is not None and not rows:
                    raise PermanentError(
                        "iqa_paging_stuck", f"iMIS said more rows follow offset {page[0]} but sent none")
                await waiting.put((page[0] + start, rows, page[2], page[3]))
                last = (last + [_identity(item, row_key) for item in rows[-self._overlap:]])[-self._overlap:]
                offset = page[3]
        except Exception as exc:  # handed to the caller, who raises it where the page would have been
            await waiting.put(exc)
            return
        await waiting.put(None)

    async def _fresh_page(self, query_name: str, parameters: Sequence[str], offset: int, last: list[Any],
                          row_key: str) -> tuple[int, RawPage]:
        """The page at ``offset``, asked for from before it, and the index of its first row not handed on yet."""
        if all(anchor is None for anchor in last):  # no row_key column to find rows by: positions only
            return 0, await self._page(query_name, parameters, offset)
        back = len(last)
        while True:
            page = await self._page(query_name, parameters, max(0, offset - back))
            start = _after(page[1], last, row_key, window=2 * back + len(last))
            if start is not None:
                return start, page
            if back >= self._page_size - 1 or back >= offset:
                raise IqaResultShifted("iqa_result_shifted", f"{query_name}: the result moved by more than "
                                       f"{back} rows while it was read; it is read again from the start")
            back = min(back * 4, self._page_size - 1, offset)
            log.info("iqa.result_moved", extra={"query": query_name, "offset": offset, "overlap": back})

    async def _page(self, query_name: str, parameters: Sequence[str], offset: int) -> RawPage:
        params = [("QueryName", query_name), *(("Parameter", p) for p in parameters),
                  ("offset", str(offset)), ("limit", str(self._page_size))]
        return _read_page(await self._get(self._path, params), offset)

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


def _after(items: list[Any], last: list[Any], row_key: str, *, window: int) -> int | None:
    """The index just past where ``last`` (the rows handed on, oldest first) ends among the first ``window``
    items; None when none of them is there.

    Rows are lined up, not just looked up: the end that matches most of ``last``'s rows before it wins (the
    one nearest where nothing moved on a tie), so a member whose rows repeat (an IQA joining several rows per
    member) is placed right. When ``last``'s final row is not found (it left the result), the row before
    it is tried, and so on."""
    seen = [_identity(item, row_key) for item in items[:window]]
    expected = len(last) - 1
    for dropped in range(len(last)):
        tail = last[: len(last) - dropped]
        if tail[-1] is None:
            continue
        best: tuple[int, int] | None = None  # (rows matched, -distance from the expected end), and the end
        best_end = -1
        for end in range(len(seen)):
            matched = 0
            while matched < len(tail) and end - matched >= 0 and seen[end - matched] == tail[-1 - matched]:
                matched += 1
            if matched and (best is None or (matched, -abs(end - expected)) > best):
                best, best_end = (matched, -abs(end - expected)), end
        if best is not None:
            return best_end + 1
    return None


def _identity(item: Any, row_key: str) -> Any:
    """The ``row_key`` column of a raw row (flat or GenericEntityData), as text; None when it has none."""
    if not isinstance(item, dict):
        return None
    properties = item.get("Properties")
    if isinstance(properties, dict):
        for entry in properties.get("$values") or ():
            if isinstance(entry, dict) and str(entry.get("Name", "")).lower() == row_key:
                value = plain_value(entry.get("Value"))
                return None if value is None else str(value)
        return None
    for key, value in item.items():
        if key.lower() == row_key:
            return None if value is None else str(value)
    return None


async def _decode_rows(items: list[Any], slice_size: int = 50) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(items), slice_size):
        rows += [decode_row(item) for item in items[start : start + slice_size] if isinstance(item, dict)]
        await asyncio.sleep(0)
    return rows
