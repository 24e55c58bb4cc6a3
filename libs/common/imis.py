"""iMIS REST: one site and user's bearer token, requests that renew it, failures as typed errors.

See docs/imis.md#authentication.

    session = ImisSession(http, "https://members.example.org", "SMS_INTEGRATION", password)
    response = await session.request("GET", "/api/IQA", params=[("QueryName", "$/Textpulse/SMS Audience")])
    session.raise_for(response, "GET /api/IQA")  # a 2xx passes; anything else raises, see below
    body = json_object(response, "GET /api/IQA")

Tokens come from ``POST {base}/token`` (password grant), are cached, and are renewed 10 s before
``expires_in`` runs out. A 401 means the token expired or was revoked early: ``request`` renews it and
sends again, up to ``renewals`` times, then hands back the last answer. What a 401 with fresh tokens
means is the caller's to say: the IQA client gives up, the panel write-back tries again later.

Failures are translated here, once:

- ImisUnavailable, a DependencyUnavailable (the same call may succeed later): no connection or a
  timeout (``imis_unavailable``), 429 (``imis_rate_limited``, ``retry_after`` from ``Retry-After``),
  5xx (``imis_server_error``), an answer that is not a JSON object or a token grant without a token
  (``imis_bad_response``).
- PermanentError: the site's host is or resolves to an internal address outside development
  (``imis_host_internal``, refused by ``libs/common/public_hosts.py``'s client); credentials refused at
  /token (``imis_credentials_rejected``); 403, 404 and other 4xx under the session's ``Refusals`` codes:
  ``imis_forbidden`` and ``imis_rejected`` by default. The IQA client reports ``iqa_*`` codes instead,
  which the alert watcher tells from an iMIS that did not answer.

``write_panel`` writes one member's panel row (docs/imis.md#the-sms-preferences-panel); IQA paging is in
``imis_iqa``, and the ``$type``/``$values`` shapes in ``imis_values``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from libs.common.errors import DependencyUnavailable, PermanentError
from libs.common.imis_values import PanelValue, panel_entity
from libs.common.logging import get_logger
from libs.common.public_hosts import InternalHost

__all__ = ["ImisSession", "ImisUnavailable", "Refusals", "authorized", "error_text", "json_object", "write_panel"]

log = get_logger(__name__)

_UTF8_BOM = b"\xef\xbb\xbf"
HOST_INTERNAL = "imis_host_internal"
_TOKEN_MARGIN_S = 10.0
_DEFAULT_TOKEN_LIFETIME_S = 1199  # what iMIS grants when the answer does not say


class ImisUnavailable(DependencyUnavailable):
    """iMIS gave no usable answer this time; ``retry_after`` is its ``Retry-After`` in seconds, if any."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Refusals:
    """The codes a 4xx refusal is reported under; ``not_found_hint`` is added to a 404's message."""

    forbidden: str = "imis_forbidden"
    not_found: str = "imis_rejected"
    rejected: str = "imis_rejected"
    not_found_hint: str = ""


class ImisSession:
    """One iMIS site and user, so one cached token. Not shared between sites; safe to reuse across calls."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        username: str,
        password: str,
        *,
        renewals: int = 1,
        refusals: Refusals = Refusals(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._renewals = renewals
        self._refusals = refusals
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with the bearer token; each 401 drops the token and sends again with a new one, up to
        ``renewals`` times. Returns the last answer whatever its status (a 401 included); raises
        ImisUnavailable when iMIS cannot be reached, and the errors of getting a token."""
        renewed = 0
        while True:
            token = await self.bearer()
            response = await self._send(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if response.status_code != 401 or renewed >= self._renewals:
                return response
            renewed += 1
            self._token = None
            log.info("imis.token_rejected", extra={"path": path})

    async def bearer(self) -> str:
        """The cached token, or a new one when it is missing or about to run out."""
        if self._token is not None and self._clock() < self._token_expires:
            return self._token
        form = {"grant_type": "password", "username": self._username, "password": self._password}
        response = await self._send("POST", "/token", data=form)
        if response.status_code == 400:
            raise PermanentError("imis_credentials_rejected", f"iMIS refused the credentials: {error_text(response)}")
        self.raise_for(response, "POST /token")
        grant = json_object(response, "POST /token")
        token, expires_in = grant.get("access_token"), grant.get("expires_in", _DEFAULT_TOKEN_LIFETIME_S)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise ImisUnavailable("imis_bad_response", "POST /token: the answer has no access_token")
        self._token = token
        self._token_expires = self._clock() + max(float(expires_in) - _TOKEN_MARGIN_S, 1.0)
        log.info("imis.token_issued", extra={"base_url": self._base, "expires_in": expires_in})
        return token

    def raise_for(self, response: httpx.Response, what: str) -> None:
        """Raise the typed error for an answer that is not a 2xx (see the module docstring)."""
        status = response.status_code
        if status < 300:
            return
        detail = f"{what}: HTTP {status} {error_text(response)}"
        if status == 429:
            raise ImisUnavailable("imis_rate_limited", detail, retry_after=_retry_after(response))
        if status >= 500:
            raise ImisUnavailable("imis_server_error", detail)
        if status == 403:
            raise PermanentError(self._refusals.forbidden, detail)
        if status == 404:
            raise PermanentError(self._refusals.not_found, detail + self._refusals.not_found_hint)
        raise PermanentError(self._refusals.rejected, detail)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, self._base + path, **kwargs)
        except InternalHost as exc:
            raise PermanentError(HOST_INTERNAL, f"{method} {path}: the iMIS site {exc}") from None
        except httpx.TimeoutException as exc:
            raise ImisUnavailable("imis_unavailable", f"{method} {path}: timed out ({type(exc).__name__})") from exc
        except httpx.RequestError as exc:
            raise ImisUnavailable("imis_unavailable", f"{method} {path}: {type(exc).__name__}: {exc}") from exc


async def write_panel(session: ImisSession, panel: str, member_id: str,
                      values: Sequence[tuple[str, PanelValue]]) -> str:
    """Write the member's single-instance panel row; returns ``updated`` (PUT) or ``created``.

    ``PUT {base}/api/{panel}/{id}``, and ``POST {base}/api/{panel}`` when iMIS has no row yet (404). A PUT
    sends the whole row, so writing the same values twice is harmless: retries are safe, even after a 500
    that iMIS saved anyway (a forum-reported quirk). Besides the session's errors: still 401 with a new
    token is ImisUnavailable ``imis_unauthorized`` (try later), no such contact is PermanentError
    ``imis_member_missing``.
    """
    body = panel_entity(panel, member_id, values)
    response = await authorized(session, "PUT", f"/api/{panel}/{member_id}", json=body)
    if response.status_code != 404:
        session.raise_for(response, "PUT")
        return "updated"
    response = await authorized(session, "POST", f"/api/{panel}", json=body)
    if response.status_code == 404:
        raise PermanentError("imis_member_missing", f"iMIS has no contact {member_id}: {error_text(response)}")
    session.raise_for(response, "POST")
    return "created"


async def authorized(session: ImisSession, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """``session.request``, with a 401 despite a new token as ImisUnavailable ``imis_unauthorized`` (try later)."""
    response = await session.request(method, path, **kwargs)
    if response.status_code == 401:
        raise ImisUnavailable("imis_unauthorized", f"{method} {path}: 401 with a new token")
    return response


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer's JSON object; ImisUnavailable ``imis_bad_response`` when it is not one.

    orjson, not the standard library: an IQA page of 500 rows is about 700 KB of ``$type`` names, and a
    1,000,000-member audience spent half its CPU in ``json.loads``. A UTF-8 byte-order mark, which .NET
    servers may write, is skipped."""
    try:
        data = orjson.loads(response.content.removeprefix(_UTF8_BOM))
    except ValueError:
        raise ImisUnavailable("imis_bad_response", f"{what}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise ImisUnavailable("imis_bad_response", f"{what}: the answer is not a JSON object")
    return data


def error_text(response: httpx.Response) -> str:
    """iMIS's error text: HttpError ``Message``, OAuth ``error_description``, or the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text[:200].split())
    if isinstance(data, dict):
        for key in ("Message", "error_description", "error", "detail"):
            if data.get(key):
                return str(data[key])[:200]
    return str(data)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None
