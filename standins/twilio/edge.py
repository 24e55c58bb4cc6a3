"""The request fault plans, applied in front of the REST API (see ``faults`` for the plan kinds).

A plain ASGI middleware, so requests pay one truth test when no plan is active. Control and health
paths are never faulted.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from standins.twilio.context import TwilioApp
from standins.twilio.errors import (
    GATEWAY_TIMEOUT_HTML,
    UNAVAILABLE_HTML,
    internal_error,
    too_many_requests,
    unavailable,
)


async def _discard(message: Message) -> None:
    """A ``send`` that drops the response: the request is processed, the client never hears."""


async def _answer(send: Send, status: int, body: bytes | memoryview, content_type: str) -> None:
    body = bytes(body)  # ASGI bodies are bytes; a rendered Starlette response may hold a memoryview
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FaultEdge:
    def __init__(self, app: ASGIApp, twilio: TwilioApp) -> None:
        self.app = app
        self.twilio = twilio

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.twilio.state.faults
        if scope["type"] != "http" or not faults.request:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_control") or path == "/healthz":
            await self.app(scope, receive, send)
            return
        is_create = scope["method"] == "POST" and path.endswith("/Messages.json")
        spec = faults.take_request(is_create)
        if spec is None:
            await self.app(scope, receive, send)
            return
        if spec.kind == "rate_limited":
            error = too_many_requests()
            await _answer(send, 429, error.render().body, "application/json")
        elif spec.kind == "server_error":
            if spec.processed:
                await self.app(scope, receive, _discard)
            await _answer(send, 500, internal_error().render().body, "application/json")
        elif spec.kind == "unavailable":
            if spec.body == "html":
                await _answer(send, 503, UNAVAILABLE_HTML, "text/html")
            else:
                await _answer(send, 503, unavailable().render().body, "application/json")
        else:
            await self.app(scope, receive, _discard)
            await self._hang(spec.hang_seconds)
            await _answer(send, 504, GATEWAY_TIMEOUT_HTML, "text/html")

    async def _hang(self, seconds: float) -> None:
        twilio = self.twilio
        if twilio.release is None:
            twilio.release = asyncio.Event()
        twilio.hung += 1
        try:
            await asyncio.wait_for(twilio.release.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            twilio.hung -= 1
