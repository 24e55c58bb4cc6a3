"""``POST /twilio/inbound`` and ``POST /twilio/status``: check, store, answer. Nothing else.

Order of work for each request (the signature is checked before any parameter is interpreted):

1. The body is read up to ``MAX_BODY_BYTES`` (413 past it) and must be a UTF-8 form (415, 400).
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
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl
from uuid import UUID, uuid4

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.routing import Route

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


def install(app: FastAPI, inbox: WebhookInbox) -> None:
    """Add the webhook routes and the handler that turns a refusal into its bare status code."""

    @app.exception_handler(WebhookRefused)
    async def refused(request: Request, exc: WebhookRefused) -> Response:
        log.warning(
            "webhook.refused",
            extra={"reason": exc.code, "detail": exc.message, "path": request.url.path,
                   "client": request.client.host if request.client else None},
        )
        return Response(status_code=exc.status)

    async def inbound(request: Request) -> Response:
        await counted_accept(inbox, request, "inbound")
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status(request: Request) -> Response:
        await counted_accept(inbox, request, "status")
        return Response(status_code=200)

    # Plain Starlette routes: they take the raw request and nothing else, and skip FastAPI's
    # per-request dependency and response machinery (a third of a webhook's CPU, bench/webhooks.py).
    app.router.routes.append(Route("/twilio/inbound", inbound, methods=["POST"]))
    app.router.routes.append(Route("/twilio/status", status, methods=["POST"]))


async def counted_accept(inbox: WebhookInbox, request: Request, kind: WebhookKind) -> None:
    """``accept``, counted by kind and verdict: ``accepted``, or the refusal's reason code."""
    try:
        await accept(inbox, request, kind)
    except WebhookRefused as exc:
        metrics.WEBHOOKS.labels(kind, exc.code).inc()
        raise
    metrics.WEBHOOKS.labels(kind, "accepted").inc()


async def accept(inbox: WebhookInbox, request: Request, kind: WebhookKind) -> None:
    """Check and store one webhook. Raises WebhookRefused."""
    params = parse_form(request.headers.get("content-type", ""), await read_body(request))
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


async def _verified_account(inbox: WebhookInbox, request: Request, params: FormParams, account_sid: str) -> _Verified:
    account = await inbox.directory.get(account_sid)
    if account is None:
        raise WebhookRefused(403, "account_unknown", f"no organisation has account {account_sid[:40]}")
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise WebhookRefused(403, "signature_missing", f"unsigned request for {account_sid}")
    settings = request.headers.get(SETTINGS_HEADER)
    url = public_url(account.webhook_base_url, request.url.path, request.url.query)
    refusal = signature_refusal(account, url, params, signature, settings)
    if refusal is None:
        return _Verified(account.org_id, url)
    fresh = await inbox.directory.refreshed(account)  # the auth token or SharedKey may have changed
    if fresh is not None:
        url = public_url(fresh.webhook_base_url, request.url.path, request.url.query)
        refusal = signature_refusal(fresh, url, params, signature, settings)
        if refusal is None:
            return _Verified(fresh.org_id, url)
    inbox.refusals.count(account.org_id, url)  # the organisation is alerted when these pile up
    scheme = f"signature settings {settings[:120]!r}" if settings else "auth token signature"
    raise WebhookRefused(403, refusal, f"{refusal.replace('_', ' ')} for {account_sid} at {url} ({scheme})")


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebhookRefused(413, "body_too_large", f"Content-Length {declared}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRefused(413, "body_too_large", f"more than {MAX_BODY_BYTES} bytes")
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
