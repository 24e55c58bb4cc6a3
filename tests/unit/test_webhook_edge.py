"""The opt-out edge's ASGI app (services/optout/webhooks.py): refusals decided before any account or store is
asked, and what is not a webhook going to the fallback app. Table-driven, on raw ASGI messages."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, cast

import pytest
from starlette.types import Message, Receive, Scope, Send

from services.optout.webhooks import MAX_BODY_BYTES, WebhookEdge, WebhookInbox

FORM = (b"content-type", b"application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Case:
    label: str
    method: str
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    messages: tuple[Message, ...]
    status: int
    reason: str | None  # the logged webhook.refused reason, None when nothing is logged


def body(data: bytes, *, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


CASES = [
    Case("GET on a webhook path", "GET", b"", (), (), 405, None),
    Case("query not UTF-8", "POST", b"tenant=\xff", (FORM,), (body(b"AccountSid=AC1"),), 400, "query_not_utf8"),
    Case("client left mid-body", "POST", b"", (FORM,), (body(b"A", more=True), {"type": "http.disconnect"}),
         400, "client_disconnected"),
    Case("declared body too large", "POST", b"", (FORM, (b"content-length", str(MAX_BODY_BYTES + 1).encode())),
         (), 413, "body_too_large"),
    Case("chunked body too large", "POST", b"", (FORM,),
         (body(b"x" * MAX_BODY_BYTES, more=True), body(b"x")), 413, "body_too_large"),
    Case("not a form", "POST", b"", ((b"content-type", b"text/plain"),), (body(b"STOP"),), 415, "body_not_form"),
    Case("no AccountSid", "POST", b"", (FORM,), (body(b"Body=STOP"),), 403, "account_missing"),
]


async def call(app: WebhookEdge, scope: Scope, messages: tuple[Message, ...]) -> list[Message]:
    pending, sent = list(messages), []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, cast(Receive, receive), cast(Send, send))
    return sent


def scope(method: str, path: str, query: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> Scope:
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": list(headers),
            "client": ("203.0.113.7", 5000)}


async def never_called(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the fallback app must not see a webhook")


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
def test_refusals_answer_their_status_and_log_their_reason(
    case: Case, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # No account directory or store: each of these is refused before either would be asked.
    app = WebhookEdge(cast(WebhookInbox, None), fallback=never_called)
    with caplog.at_level(logging.WARNING, logger="services.optout.webhooks"):
        sent = asyncio.run(call(app, scope(case.method, path, case.query, case.headers), case.messages))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == case.status
    headers = dict(sent[0]["headers"])
    assert int(headers[b"content-length"]) == len(sent[1]["body"])
    if case.status == 405:
        assert headers[b"allow"] == b"POST"
    reasons = [getattr(r, "reason", None) for r in caplog.records if r.getMessage() == "webhook.refused"]
    assert reasons == ([case.reason] if case.reason else [])


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/twilio/inbound/", "/twilio", "/"])
def test_what_is_not_a_webhook_goes_to_the_fallback(path: str) -> None:
    seen: list[str] = []

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = WebhookEdge(cast(WebhookInbox, None), fallback=fallback)
    sent: list[Any] = asyncio.run(call(app, scope("POST", path, b"", (FORM,)), ()))
    assert seen == [path] and sent[0]["status"] == 299
