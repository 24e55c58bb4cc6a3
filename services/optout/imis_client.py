"""iMIS REST adapter for the write-back: a bearer token, and one panel row written (imis.md §1, §4b).

``ImisClient(http, base_url, username, password).write_panel(panel, member_id, values)`` does
``PUT {base}/api/{panel}/{id}`` and, when iMIS answers 404 (no row yet), ``POST {base}/api/{panel}``.
A PUT sends the whole row, so writing the same values twice is harmless: retries are safe, even after a
500 that iMIS saved anyway (a forum-reported quirk).

Tokens come from ``POST {base}/token`` (password grant), are cached, renewed 10 s before
``expires_in`` runs out, and renewed once more when a call answers 401 (then that call is retried once).

Failures are translated here, once:

- DependencyUnavailable (retry later): no connection or timeout (``imis_unavailable``), 5xx
  (``imis_server_error``), 429 (``imis_rate_limited``), still 401 after a new token (``imis_unauthorized``).
- PermanentError (a person must act): credentials refused at /token (``imis_credentials_rejected``),
  403 (``imis_forbidden``), no such contact on POST (``imis_member_missing``), other 4xx (``imis_rejected``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from libs.common.errors import DependencyUnavailable, PermanentError
from libs.common.logging import get_logger

log = get_logger(__name__)

_TOKEN_MARGIN_S = 10.0
_GENERIC_ENTITY = "Asi.Soa.Core.DataContracts.GenericEntityData, Asi.Contracts"
_IDENTITY = "Asi.Soa.Core.DataContracts.IdentityData, Asi.Contracts"
_ELEMENTS = "System.Collections.ObjectModel.Collection`1[[System.String, mscorlib]], mscorlib"
_PROPERTIES = "Asi.Soa.Core.DataContracts.GenericPropertyDataCollection, Asi.Contracts"
_PROPERTY = "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts"

PanelValue = str | bool | int | None


def panel_entity(panel: str, member_id: str, values: Sequence[tuple[str, PanelValue]]) -> dict[str, Any]:
    """The GenericEntityData body of a single-instance panel row (imis.md §4b). A None value is left out,
    which is how iMIS writes NULL; booleans and integers carry their .NET type."""

    def identity(entity: str) -> dict[str, Any]:
        return {"$type": _IDENTITY, "EntityTypeName": entity,
                "IdentityElements": {"$type": _ELEMENTS, "$values": [member_id]}}

    def prop(name: str, value: PanelValue) -> dict[str, Any]:
        entry: dict[str, Any] = {"$type": _PROPERTY, "Name": name}
        if isinstance(value, bool):
            entry["Value"] = {"$type": "System.Boolean", "$value": value}
        elif isinstance(value, int):
            entry["Value"] = {"$type": "System.Int32", "$value": value}
        elif value is not None:
            entry["Value"] = value
        return entry

    return {
        "$type": _GENERIC_ENTITY,
        "EntityTypeName": panel,
        "PrimaryParentEntityTypeName": "Party",
        "Identity": identity(panel),
        "PrimaryParentIdentity": identity("Party"),
        "Properties": {"$type": _PROPERTIES, "$values": [prop(n, v) for n, v in values]},
    }


class ImisClient:
    """One iMIS site, one user. Not shared between sites; safe to reuse across jobs."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        username: str,
        password: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0

    async def write_panel(self, panel: str, member_id: str, values: Sequence[tuple[str, PanelValue]]) -> str:
        """Write the member's panel row; returns ``updated`` (PUT) or ``created`` (POST after a 404)."""
        body = panel_entity(panel, member_id, values)
        response = await self._call("PUT", f"/api/{panel}/{member_id}", body)
        if response.status_code != 404:
            self._raise_for(response, "PUT")
            return "updated"
        response = await self._call("POST", f"/api/{panel}", body)
        if response.status_code == 404:
            raise PermanentError("imis_member_missing", f"iMIS has no contact {member_id}: {_message(response)}")
        self._raise_for(response, "POST")
        return "created"

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        response = await self._send(method, path, body, await self._bearer())
        if response.status_code == 401:
            self._token = None  # expired or revoked early: renew once, retry once
            response = await self._send(method, path, body, await self._bearer())
            if response.status_code == 401:
                raise DependencyUnavailable("imis_unauthorized", f"{method} {path}: 401 with a new token")
        return response

    async def _send(self, method: str, path: str, body: dict[str, Any], token: str) -> httpx.Response:
        try:
            return await self._http.request(
                method, self._base + path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable("imis_unavailable", f"{method} {path}: {type(exc).__name__}") from exc

    async def _bearer(self) -> str:
        if self._token is not None and self._clock() < self._token_expires:
            return self._token
        form = {"grant_type": "password", "username": self._username, "password": self._password}
        try:
            response = await self._http.post(self._base + "/token", data=form)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable("imis_unavailable", f"POST /token: {type(exc).__name__}") from exc
        if response.status_code == 400:
            raise PermanentError("imis_credentials_rejected", f"iMIS refused the credentials: {_message(response)}")
        self._raise_for(response, "POST /token")
        try:
            grant = response.json()
            token = str(grant["access_token"])
            expires_in = float(grant.get("expires_in", 1199))
        except (ValueError, KeyError, TypeError) as exc:
            raise DependencyUnavailable("imis_bad_response", f"token response unreadable: {exc}") from None
        self._token = token
        self._token_expires = self._clock() + max(expires_in - _TOKEN_MARGIN_S, 1.0)
        log.info("imis.token_issued", extra={"base_url": self._base, "expires_in": expires_in})
        return token

    @staticmethod
    def _raise_for(response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 300:
            return
        detail = f"{what}: HTTP {status} {_message(response)}"
        if status == 429:
            raise DependencyUnavailable("imis_rate_limited", detail)
        if status >= 500:
            raise DependencyUnavailable("imis_server_error", detail)
        if status == 403:
            raise PermanentError("imis_forbidden", detail)
        raise PermanentError("imis_rejected", detail)


def _message(response: httpx.Response) -> str:
    """iMIS's error text: HttpError ``Message``, OAuth ``error_description``, or the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        for key in ("Message", "error_description", "error", "detail"):
            if data.get(key):
                return str(data[key])[:200]
    return str(data)[:200]
