"""Twilio's Webhooks SharedKeys API (``webhooks.twilio.com/v1/Webhooks/SharedKeys``), as the twilio SDK's
``client.webhooks.v1.shared_keys`` calls it: JSON in and out, camelCase fields, token-paged lists.

A SharedKey belongs to the account whose credentials created it. Its ``secret`` is in the create answer
only; fetch and list never show it. The stand-in signs the main account's webhooks with one of its keys
when ``PUT /_control/webhook-signing`` says so (``signature.WebhookSigning``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from standins.twilio.errors import invalid, not_found, test_credentials_refused
from standins.twilio.formats import iso8601

if TYPE_CHECKING:  # the app's context holds the state that holds these keys
    from standins.twilio.context import TwilioApp

router = APIRouter()

PATH = "/v1/Webhooks/SharedKeys"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"  # TypeID's base32 alphabet


@dataclass(slots=True)
class SharedKey:
    key_id: str
    account_sid: str
    friendly_name: str
    secret: str = field(repr=False)
    created_at: float
    updated_at: float

    def resource(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.key_id, "friendlyName": self.friendly_name,
                                "createdAt": iso8601(self.created_at), "updatedAt": iso8601(self.updated_at)}
        if with_secret:
            body["secret"] = self.secret
        return body


def new_key_id() -> str:
    """A TypeID as Twilio gives SharedKeys: ``webhooks_sharedkey_`` and 26 base32 characters."""
    return "webhooks_sharedkey_" + "".join(secrets.choice(_CROCKFORD) for _ in range(26))


@dataclass(slots=True)
class SharedKeys:
    keys: dict[str, SharedKey] = field(default_factory=dict)

    def create(self, account_sid: str, friendly_name: str, now: float) -> SharedKey:
        key = SharedKey(new_key_id(), account_sid, friendly_name, secrets.token_urlsafe(32), now, now)
        self.keys[key.key_id] = key
        return key

    def of(self, account_sid: str, key_id: str) -> SharedKey | None:
        key = self.keys.get(key_id)
        return key if key is not None and key.account_sid == account_sid else None

    def clear(self) -> None:
        self.keys.clear()


def _caller(request: Request) -> tuple[TwilioApp, str]:
    app: TwilioApp = request.app.state.twilio
    principal = app.auth.principal(request.headers.get("authorization"), None)
    if principal.test:
        raise test_credentials_refused()
    return app, principal.account_sid


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        raise invalid(20001, "The request body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid(20001, "The request body must be a JSON object")
    return body


@router.post(PATH)
async def create_shared_key(request: Request) -> JSONResponse:
    app, account_sid = _caller(request)
    friendly_name = (await _json_object(request)).get("friendlyName") or ""
    if not isinstance(friendly_name, str) or len(friendly_name) > 64:
        raise invalid(20001, "friendlyName must be a string of at most 64 characters")
    key = app.state.shared_keys.create(account_sid, friendly_name, time.time())
    return JSONResponse(key.resource(with_secret=True), status_code=201)


@router.get(PATH)
async def list_shared_keys(request: Request) -> JSONResponse:
    app, account_sid = _caller(request)
    keys = [k.resource() for k in app.state.shared_keys.keys.values() if k.account_sid == account_sid]
    return JSONResponse({"sharedKeys": keys, "meta": {"key": "sharedKeys", "pageSize": len(keys)}})


@router.get(PATH + "/{key_id}")
async def fetch_shared_key(key_id: str, request: Request) -> JSONResponse:
    app, account_sid = _caller(request)
    key = app.state.shared_keys.of(account_sid, key_id)
    if key is None:
        raise not_found(request.url.path)
    return JSONResponse(key.resource())


@router.delete(PATH + "/{key_id}")
async def delete_shared_key(key_id: str, request: Request) -> Response:
    app, account_sid = _caller(request)
    if app.state.shared_keys.of(account_sid, key_id) is None:
        raise not_found(request.url.path)
    del app.state.shared_keys.keys[key_id]
    return Response(status_code=204)
