"""The body cap as ASGI middleware: refused before the app runs, or the moment a chunked body passes it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from libs.common.body_limits import BodyLimit, BodyTooLarge, RouteLimit, describe_bytes


class RecordingApp:
    """Reads the whole body, then answers 200 with its length; remembers whether it ran."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"keep-alive")]})
        await send({"type": "http.response.body", "body": str(size).encode()})


def _scope(path: str = "/api/v1/campaigns", content_length: int | None = None) -> Scope:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


async def _call(app: Any, scope: Scope, chunks: list[bytes]) -> tuple[list[Message], int]:
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return pending.pop(0)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, reads


def _status_and_headers(sent: list[Message]) -> tuple[int, dict[bytes, bytes]]:
    start = sent[0]
    return start["status"], dict(start["headers"])


async def test_a_declared_length_over_the_cap_is_refused_without_reading_or_running_the_app() -> None:
    inner = RecordingApp()
    sent, reads = await _call(BodyLimit(inner, default=1000), _scope(content_length=300_000_000), [b"x" * 10])
    status, headers = _status_and_headers(sent)
    assert (status, inner.called, reads) == (413, False, 0)
    assert headers[b"connection"] == b"close"
    problem = json.loads(sent[1]["body"])
    assert problem["code"] == "body_too_large" and problem["status"] == 413
    assert problem["detail"] == "the request body is over 1,000 bytes"


async def test_a_chunked_body_is_stopped_at_the_chunk_that_passes_the_cap() -> None:
    inner = RecordingApp()
    chunks = [b"x" * 400] * 10  # 4,000 bytes, no Content-Length
    sent, reads = await _call(BodyLimit(inner, default=1000), _scope(), chunks)
    status, headers = _status_and_headers(sent)
    assert (status, reads) == (413, 3)  # the third chunk takes it to 1,200: nothing after it is read
    assert headers[b"connection"] == b"close"


async def test_a_body_within_the_cap_reaches_the_app_untouched() -> None:
    inner = RecordingApp()
    sent, _ = await _call(BodyLimit(inner, default=1000), _scope(content_length=1000), [b"x" * 500, b"y" * 500])
    status, headers = _status_and_headers(sent)
    assert (status, sent[1]["body"]) == (200, b"1000")
    assert headers[b"connection"] == b"keep-alive"


async def test_a_route_prefix_has_its_own_cap_and_the_longest_prefix_wins() -> None:
    limits = BodyLimit(RecordingApp(), default=1000, routes=[RouteLimit("/api/v1/audiences", 5000),
                                                             RouteLimit("/api/v1/audiences/csv", 9000)])
    assert limits.limit_for("/api/v1/campaigns") == 1000
    assert limits.limit_for("/api/v1/audiences/preview") == 5000
    assert limits.limit_for("/api/v1/audiences/csv") == 9000
    sent, _ = await _call(limits, _scope("/api/v1/audiences/csv", content_length=8000), [b"x" * 8000])
    assert _status_and_headers(sent)[0] == 200


async def test_an_app_that_already_answered_keeps_its_answer_and_the_overflow_is_raised() -> None:
    async def answers_then_reads(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            pass

    with pytest.raises(BodyTooLarge):
        await _call(BodyLimit(answers_then_reads, default=10), _scope(), [b"x" * 8, b"x" * 8])


def test_sizes_read_as_people_write_them() -> None:
    assert [describe_bytes(n) for n in (1024 * 1024, 64 * 1024, 1000)] == ["1 MB", "64 KB", "1,000 bytes"]
