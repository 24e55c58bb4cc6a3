"""A byte cap on every request body, enforced before the application reads a byte of it.

``BodyLimit`` is plain ASGI middleware, outermost in every service that takes request bodies. A request
whose ``Content-Length`` is over its route's cap is answered 413 at once and its body is never read;
a body without one (chunked) is counted as it arrives and refused the moment it passes the cap, so
neither memory nor a spooled upload on disk grows past the cap. Either way the answer is problem+json
and the connection is closed, so the rest of an oversized body is not read to keep it alive.

Inside the application the overflow surfaces as :class:`BodyTooLarge`, an ``HTTPException`` (413):
FastAPI lets those through its own body parsing, so the service's error handler renders it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_BODY_MAX_BYTES: Final = 1024 * 1024


class BodyTooLarge(HTTPException):
    code: Final = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {describe_bytes(limit)}")
        self.limit = limit


@dataclass(frozen=True)
class RouteLimit:
    """Bodies of requests whose path starts with ``path_prefix`` may be up to ``max_bytes``."""

    path_prefix: str
    max_bytes: int


def describe_bytes(count: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count:,} bytes"


class BodyLimit:
    """ASGI middleware: ``default`` bytes for any body, or the cap of the longest matching ``routes`` prefix."""

    def __init__(self, app: ASGIApp, *, default: int = JSON_BODY_MAX_BYTES, routes: Sequence[RouteLimit] = ()) -> None:
        self._app = app
        self._default = default
        self._routes = sorted(routes, key=lambda r: len(r.path_prefix), reverse=True)

    def limit_for(self, path: str) -> int:
        return next((r.max_bytes for r in self._routes if path.startswith(r.path_prefix)), self._default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return

        received = 0
        tripped = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise BodyTooLarge(limit)
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if tripped:
                    message = {**message, "headers": [*_without_connection(message.get("headers", [])),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self._app(scope, counting_receive, closing_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(scope, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _without_connection(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in headers if name.lower() != b"connection"]


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    body = json.dumps({
        "type": f"urn:textpulse:problem:{BodyTooLarge.code}",
        "title": "Content Too Large",
        "status": 413,
        "detail": BodyTooLarge(limit).detail,
        "instance": scope["path"],
        "code": BodyTooLarge.code,
    }).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
