"""iMIS IQA adapter: a bearer token, every page of a query, typed values decoded (imis.md §1-§2).

    client = ImisQueryClient(http, "https://members.example.org", "SMS_INTEGRATION", password)
    async for page in client.pages("$/Textpulse/SMS Audience", ["eq:REG"]):
        for row in page.rows:            # {"ID": "23145", "Mobile": "(415) 555-0134", "SmsOptOut": False, ...}
            ...

Paging follows the public clients: ``offset=NextOffset`` until ``HasNext`` is false, one request at a
time (ASI forbids parallel pulls). The server's ``Limit`` and ``NextOffset`` are trusted over what was
asked for; a page that claims more rows but brings none stops the run instead of looping.

Tokens (password grant at ``POST {base}/token``) are cached and renewed 10 s before ``expires_in`` runs
out; a 401 (token expired or revoked mid-paging) renews the token and repeats that page.

Failures are translated here, once:

- retried with exponential back-off, up to ``RetryPolicy.attempts`` tries per request: timeouts and
  connection errors, 5xx, 429 (``Retry-After`` honoured up to the cap), and a 200 whose body is not an
  IQA page. When the tries run out: DependencyUnavailable ``imis_unavailable``.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from libs.common.errors import DependencyUnavailable, PermanentError
from libs.common.logging import get_logger

log = get_logger(__name__)

_TOKEN_MARGIN_S = 10.0
_REAUTHS_PER_REQUEST = 2
MAX_PAGE_SIZE = 500  # the largest page iMIS serves (imis.md §2)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries per request (the first included), waiting ``base_s * 2**n`` (at most ``cap_s``)."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap_s)
        return min(self.base_s * 2 ** (failures - 1), self.cap_s) * random.uniform(0.8, 1.2)


@dataclass(frozen=True, slots=True)
class Page:
    """One IQA page: its rows decoded to ``{alias: plain value}``, plus where it sits in the result."""

    rows: list[dict[str, Any]]
    offset: int
    total: int | None


class _Retry(Exception):
    """One failed try that may succeed if repeated."""

    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._retry = retry
        self._page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._token_expires = 0.0

    async def pages(self, query_name: str, parameters: Sequence[str] = ()) -> AsyncIterator[Page]:
        """Yield every page of the IQA at ``query_name`` (``$/...``), first to last; see the module docstring.

        One request is in flight at a time, as ASI asks, but the next page is requested as soon as this
        one's paging keys are read: iMIS prepares it while this page's rows are decoded and while the
        caller works on them. Rows are decoded in slices with the loop let in between, so the next request
        goes out and its answer is read meanwhile. (A worker thread was slower: GIL hand-offs stall the loop.)
        """
        request = asyncio.create_task(self._page(query_name, parameters, 0))
        try:
            while request is not None:
                offset, items, total, next_offset = await request
                request = None
                if next_offset is not None:
                    if not items:
                        raise PermanentError(
                            "iqa_paging_stuck", f"iMIS said more rows follow offset {offset} but sent none")
                    request = asyncio.create_task(self._page(query_name, parameters, next_offset))
                yield Page(await _decode_rows(items), offset, total)
        finally:
            if request is not None:
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)

    async def _page(self, query_name: str, parameters: Sequence[str],
                    offset: int) -> tuple[int, list[Any], int | None, int | None]:
        params = [("QueryName", query_name), *(("Parameter", p) for p in parameters),
                  ("offset", str(offset)), ("limit", str(self._page_size))]
        return _read_page(await self._get("/api/IQA", params), offset)

    async def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        failures = reauths = 0
        while True:
            try:
                token = await self._bearer()
                response = await self._send("GET", path, params=params, headers={"Authorization": f"Bearer {token}"})
                if response.status_code == 401:
                    self._token = None
                    reauths += 1
                    if reauths > _REAUTHS_PER_REQUEST:
                        raise PermanentError("imis_unauthorized", f"GET {path}: still 401 with fresh tokens; "
                                             "check the iMIS user's rights to this query")
                    log.info("imis.token_rejected", extra={"path": path})
                    continue
                _raise_for(response, f"GET {path}")
                return _json_object(response, f"GET {path}")
            except _Retry as retry:
                failures += 1
                if failures >= self._retry.attempts:
                    raise DependencyUnavailable(
                        "imis_unavailable", f"iMIS did not answer after {failures} tries: {retry.what}") from None
                delay = self._retry.delay(failures, retry.retry_after)
                log.warning("imis.request_retried",
                            extra={"path": path, "failures": failures, "error": retry.what, "delay_s": round(delay, 2)})
                await self._sleep(delay)

    async def _bearer(self) -> str:
        if self._token is not None and self._clock() < self._token_expires:
            return self._token
        form = {"grant_type": "password", "username": self._username, "password": self._password}
        response = await self._send("POST", "/token", data=form)
        if response.status_code == 400:
            raise PermanentError("imis_credentials_rejected", f"iMIS refused the credentials: {_message(response)}")
        _raise_for(response, "POST /token")
        grant = _json_object(response, "POST /token")
        token, expires_in = grant.get("access_token"), grant.get("expires_in", 1199)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise _Retry("POST /token: the answer has no access_token")
        self._token = token
        self._token_expires = self._clock() + max(float(expires_in) - _TOKEN_MARGIN_S, 1.0)
        log.info("imis.token_issued", extra={"base_url": self._base, "expires_in": expires_in})
        return token

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, self._base + path, **kwargs)
        except httpx.TimeoutException as exc:
            raise _Retry(f"{method} {path}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retry(f"{method} {path}: {type(exc).__name__}: {exc}") from None


def _raise_for(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 300:
        return
    detail = f"{what}: HTTP {status} {_message(response)}"
    if status == 429:
        raise _Retry(detail, retry_after=_retry_after(response))
    if status >= 500:
        raise _Retry(detail)
    if status == 403:
        raise PermanentError("iqa_forbidden", detail)
    if status == 404:
        raise PermanentError("iqa_not_found", detail + " (does the IQA exist and is it available to REST?)")
    raise PermanentError("iqa_rejected", detail)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise _Retry(f"{what}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise _Retry(f"{what}: the answer is not a JSON object")
    return data


def _message(response: httpx.Response) -> str:
    """iMIS's error text: HttpError ``Message``, OAuth ``error_description``, or the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text[:200].split())
    if isinstance(data, dict):
        for key in ("Message", "error_description", "error"):
            if data.get(key):
                return str(data[key])[:200]
    return str(data)[:200]


def _read_page(body: dict[str, Any], asked_offset: int) -> tuple[int, list[Any], int | None, int | None]:
    """(offset, raw rows, total, offset of the next page or None when this was the last)."""
    items = body.get("Items")
    values = items.get("$values") if isinstance(items, dict) else items
    if not isinstance(values, list):
        raise PermanentError("iqa_bad_response", "the IQA answer has no Items.$values")
    offset = body.get("Offset") if isinstance(body.get("Offset"), int) else asked_offset
    total = body.get("TotalCount") if isinstance(body.get("TotalCount"), int) else None
    has_next = body.get("HasNext")
    if not isinstance(has_next, bool):  # an envelope without HasNext: fall back on the totals
        has_next = total is not None and offset + len(values) < total
    if not has_next:
        return offset, values, total, None
    next_offset = body.get("NextOffset")
    if not isinstance(next_offset, int) or next_offset <= offset:
        next_offset = offset + len(values)
    return offset, values, total, next_offset


async def _decode_rows(items: list[Any], slice_size: int = 50) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(items), slice_size):
        rows += [decode_row(item) for item in items[start : start + slice_size] if isinstance(item, dict)]
        await asyncio.sleep(0)
    return rows


def decode_row(item: dict[str, Any]) -> dict[str, Any]:
    """A row as ``{alias: value}``: GenericEntityData (``/api/IQA``) or a flat ExpandoObject (``/api/Query``).

    Typed values (``{"$type": "System.Int32", "$value": 5}``) become their ``$value``; a property
    without ``Value`` is None (iMIS's NULL). The contact id from ``PrimaryParentIdentity`` is under
    ``"$PartyId"`` when the row names one.
    """
    properties = item.get("Properties")
    if isinstance(properties, dict):
        row: dict[str, Any] = {}
        for entry in properties.get("$values") or ():
            if isinstance(entry, dict) and isinstance(entry.get("Name"), str):
                row[entry["Name"]] = plain_value(entry.get("Value"))
        party = _party_id(item.get("PrimaryParentIdentity"))
        if party is not None:
            row["$PartyId"] = party
        return row
    return {key: plain_value(value) for key, value in item.items() if key != "$type"}


def plain_value(value: Any) -> Any:
    """``{"$type": ..., "$value": v}`` -> v; a ``$values`` collection -> its list; anything else as is."""
    if isinstance(value, dict):
        if "$value" in value:
            return value["$value"]
        if "$values" in value:
            return [plain_value(v) for v in value["$values"] or ()]
        return None  # an object where a value was expected: unusable, treated as NULL
    return value


def _party_id(identity: Any) -> str | None:
    if not isinstance(identity, dict):
        return None
    elements = identity.get("IdentityElements")
    values = elements.get("$values") if isinstance(elements, dict) else None
    if isinstance(values, list) and values and isinstance(values[0], str | int) and not isinstance(values[0], bool):
        return str(values[0])
    return None
