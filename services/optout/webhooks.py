"""``POST /twilio/inbound`` and ``POST /twilio/status``: check, store, answer. Nothing else.

Order of work for each request (the signature is checked before any parameter is interpreted):

1. The body is read up to ``MAX_BODY_BYTES`` (413 past it) and must be a UTF-8 form (415, 400); so must the
   query string (400). Another method than POST on these paths gets 405.
2. ``AccountSid`` names the organisation's account (403 when missing or unknown).
3. ``X-Twilio-Signature`` must match over the account's public URL + path + query, with the auth token, or
   with the SharedKey ``X-Twilio-Webhooks-Signature-Settings`` names (403 otherwise, signatures.py).
4. The request is made durable (storage.py): appended to ``textpulse.webhooks`` and acknowledged by
   Kafka, or, when Kafka cannot take it, committed to ``webhook_requests`` directly. 503 only when both
   are down (or the account is unknown to this process and PostgreSQL cannot be asked).
5. 200: empty TwiML for an inbound message (Twilio answers the keywords itself), empty for a status.

Every refusal is logged as ``webhook.refused`` with a stable ``reason``; nothing refused is stored.
A bad signature for a known account is also counted for its organisation (refusals.py), which the usage
service turns into an alert e-mail when they pile up.
A verbatim repeat of a signed request is indistinguishable from a Twilio retry: it is stored and
answered 200, and the processor applies it once (dedupe by message SID, and by SID + status + error
code for callbacks). Each request gets its own id on arrival, which is what keeps one request stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl
from uuid import UUID, uuid4

from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common import metrics
from libs.common.errors import PermanentError
from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE
from services.optout.db import IncomingWebhook, WebhookKind
from services.optout.refusals import SignatureRefusals
from services.optout.signatures import (
    SETTINGS_HEADER,
    AccountDirectory,
    FormParams,
    public_url,
    signature_refusal,
)
from services.optout.storage import DurableStore, StoreUnavailable

log = get_logger(__name__)

# Twilio's own bodies are a few kilobytes (Body <= 1,600 characters plus some 25 fields).
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SIGNATURE_HEADER = "x-twilio-signature"


class WebhookRefused(PermanentError):
    """A webhook we will not store; ``status`` is the HTTP answer, ``code`` the logged reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


class WebhookInbox:
    """Checks webhooks against their account, makes them durable, and wakes the processor after a direct write."""

    def __init__(self, store: DurableStore, directory: AccountDirectory, wake: asyncio.Event,
                 refusals: SignatureRefusals) -> None:
        self.store = store
        self.directory = directory
        self.wake = wake
        self.refusals = refusals


ROUTES: dict[str, WebhookKind] = {"/twilio/inbound": "inbound", "/twilio/status": "status"}
_TWIML_HEADERS = [(b"content-type", b"text/xml; charset=utf-8"),
                  (b"content-length", str(len(EMPTY_TWIML.encode())).encode())]
_EMPTY_HEADERS = [(b"content-length", b"0")]
_NOT_ALLOWED_HEADERS = [(b"allow", b"POST"), (b"content-length", b"18"),
                        (b"content-type", b"text/plain; charset=utf-8")]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What a webhook's checks read from the HTTP request: headers by lower-case name (the first of a repeated one)."""

    path: str
    query: str
    headers: Mapping[str, str]
    client: str | None


class WebhookEdge:
    """The opt-out service's ASGI app: the two webhook paths answered here, everything else by ``fallback``.

    A plain ASGI callable, not routes of the FastAPI app: a webhook passes through no middleware, router
    or Request object, which were most of its CPU beside the signature and the Kafka append
    (bench/webhooks.py prints where the time goes). Other methods on these paths get 405, as a route would.
    """

    def __init__(self, inbox: WebhookInbox, fallback: ASGIApp) -> None:
        self.inbox = inbox
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if kind is None:
            await self.fallback(scope, receive, send)
        elif scope["method"] != "POST":
            await _answer(send, 405, _NOT_ALLOWED_HEADERS, b"Method Not Allowed")
        else:
            await self._webhook(kind, scope, receive, send)

    async def _webhook(self, kind: WebhookKind, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        client = scope.get("client")
        path, address = scope["path"], (client[0] if client else None)
        try:
            request = WebhookRequest(path, _query(scope), headers, address)
            await accept(self.inbox, request, await read_body(receive, headers.get("content-length", "")), kind)
        except WebhookRefused as exc:
            metrics.WEBHOOKS.labels(kind, exc.code).inc()
            log.warning("webhook.refused", extra={"reason": exc.code, "detail": exc.message, "path": path,
                                                  "client": address})
            await _answer(send, exc.status, _EMPTY_HEADERS, b"")
            return
        metrics.WEBHOOKS.labels(kind, "accepted").inc()
        if kind == "inbound":
            await _answer(send, 200, _TWIML_HEADERS, EMPTY_TWIML.encode())
        else:
            await _answer(send, 200, _EMPTY_HEADERS, b"")


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _query(scope: Scope) -> str:
    try:
        return bytes(scope.get("query_string", b"")).decode()
    except UnicodeDecodeError:
        raise WebhookRefused(400, "query_not_utf8", "undecodable query string") from None


async def accept(inbox: WebhookInbox, request: WebhookRequest, body: bytes, kind: WebhookKind) -> None:
    """Check and store one webhook. Raises WebhookRefused."""
    params = parse_form(request.headers.get("content-type", ""), body)
    account_sid = params.get("AccountSid", "")
    if not account_sid:
        raise WebhookRefused(403, "account_missing", "no AccountSid")
    received_at = datetime.now(UTC)
    try:
        account = await _verified_account(inbox, request, params, account_sid)
    except POSTGRES_RETRYABLE as exc:  # an account this process has not seen yet, and no database to ask
        raise WebhookRefused(503, "account_unavailable", f"{type(exc).__name__}: {exc}") from exc
    webhook = IncomingWebhook(uuid4(), kind, account.org_id, account_sid, account.url, dict(params), received_at)
    try:
        path = await inbox.store.store(webhook)
    except StoreUnavailable as exc:
        raise WebhookRefused(503, "store_unavailable", str(exc)) from exc
    if path == "postgres":
        inbox.wake.set()


@dataclass(frozen=True, slots=True)
class _Verified:
    org_id: UUID
    url: str


async def _verified_account(inbox: WebhookInbox, request: WebhookRequest, params: FormParams,
                            account_sid: str) -> _Verified:
    account = await inbox.directory.get(account_sid)
    if account is None:
        raise WebhookRefused(403, "account_unknown", f"no organisation has account {account_sid[:40]}")
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise WebhookRefused(403, "signature_missing", f"unsigned request for {account_sid}")
    settings = request.headers.get(SETTINGS_HEADER)
    url = public_url(account.webhook_base_url, request.path, request.query)
    refusal = signature_refusal(account, url, params, signature, settings)
    if refusal is None:
        return _Verified(account.org_id, url)
    fresh = await inbox.directory.refreshed(account)  # the auth token or SharedKey may have changed
    if fresh is not None:
        url = public_url(fresh.webhook_base_url, request.path, request.query)
        refusal = signature_refusal(fresh, url, params, signature, settings)
        if refusal is None:
            return _Verified(fresh.org_id, url)
    inbox.refusals.count(account.org_id, url)  # the organisation is alerted when these pile up
    scheme = f"signature settings {settings[:120]!r}" if settings else "auth token signature"
    raise WebhookRefused(403, refusal, f"{refusal.replace('_', ' ')} for {account_sid} at {url} ({scheme})")


async def read_body(receive: Receive, declared: str) -> bytes:
    """The request's body, refused past MAX_BODY_BYTES: at once when Content-Length says so, else as it arrives."""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebhookRefused(413, "body_too_large", f"Content-Length {declared}")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookRefused(400, "client_disconnected", "the client left before its body was read")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRefused(413, "body_too_large", f"more than {MAX_BODY_BYTES} bytes")
        if not message.get("more_body", False):
            return bytes(body)


def parse_form(content_type: str, body: bytes) -> FormParams:
    """The form's fields, decoded as UTF-8 strictly: Twilio never sends anything else."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise WebhookRefused(415, "body_not_form", f"content type {content_type[:80]!r}")
    try:
        text = body.decode("ascii")  # a form body is percent-encoded ASCII
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise WebhookRefused(400, "body_not_utf8", f"undecodable form: {exc.reason}") from None
    except ValueError as exc:
        raise WebhookRefused(400, "body_malformed", str(exc)[:200]) from None
    return FormParams(pairs)
