"""Oversized request bodies against the real API served by uvicorn: 413 problem+json before
authentication, for a declared length and for a chunked body, and the connection is closed. (The opt-out
service caps webhook bodies itself, with its refusal logged: tests/integration/test_optout_webhooks.py.)"""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import urlsplit

import httpx

from tests.integration.api_harness import serving_api


async def _raw_post(url: str, path: str, head: dict[str, str], chunks: list[bytes]) -> tuple[int, dict[str, str],
                                                                                              dict, bool]:
    """POST over a plain socket, writing ``chunks`` while reading the answer; returns status, headers,
    problem body, and whether the server closed the connection after answering.

    Socket calls, not asyncio streams: a server that answers early and closes makes a write fail with a
    reset, and a stream would then drop the answer it had received but not yet handed over."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setblocking(False)
    request = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
    await loop.sock_sendall(sock, (request + "\r\n").encode())

    async def write_body() -> None:
        try:
            for chunk in chunks:
                await loop.sock_sendall(sock, chunk)
        except OSError:
            pass  # the server stopped reading: expected once it refused the body

    sending = asyncio.create_task(write_body())
    try:
        received = b""
        while b"\r\n\r\n" not in received:
            received += await loop.sock_recv(sock, 65536)
        head_bytes, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head_bytes.decode().split("\r\n")
        headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines)}
        while len(body) < int(headers["content-length"]):
            body += await loop.sock_recv(sock, 65536)
        try:
            closed = await asyncio.wait_for(loop.sock_recv(sock, 1), timeout=30) == b""
        except ConnectionResetError:  # closed with our unread chunks still in its buffer: a reset, still closed
            closed = True
    finally:
        sending.cancel()
        sock.close()
    return int(status_line.split()[1]), headers, json.loads(body), closed


def _chunked(total: int, size: int = 64 * 1024) -> list[bytes]:
    piece = f"{size:x}\r\n".encode() + b"{" * size + b"\r\n"
    return [piece] * (total // size) + [b"0\r\n\r\n"]


async def test_a_declared_300_mb_body_is_refused_before_authentication(database_url: str,
                                                                      kafka_bootstrap: str) -> None:
    async with serving_api(database_url, kafka_bootstrap) as url:
        status, headers, problem, closed = await _raw_post(
            url, "/api/v1/campaigns", {"Content-Type": "application/json", "Content-Length": str(300 * 1024 * 1024)},
            [])
    assert (status, problem["code"], closed) == (413, "body_too_large", True)
    assert headers["content-type"] == "application/problem+json"
    assert problem["detail"] == "the request body is over 1 MB"


async def test_a_chunked_body_is_refused_at_the_cap(database_url: str, kafka_bootstrap: str) -> None:
    async with serving_api(database_url, kafka_bootstrap) as url:
        status, headers, problem, closed = await _raw_post(
            url, "/api/v1/campaigns", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            _chunked(8 * 1024 * 1024))
    assert (status, problem["code"], closed) == (413, "body_too_large", True)
    assert headers["connection"] == "close"


async def test_json_bodies_under_the_cap_and_larger_csv_uploads_still_get_through(database_url: str,
                                                                                 kafka_bootstrap: str) -> None:
    async with serving_api(database_url, kafka_bootstrap) as url, httpx.AsyncClient(base_url=url) as client:
        small = await client.post("/api/v1/campaigns", json={"name": "x" * 1000})
        upload = await client.post("/api/v1/audiences/csv",
                                   files={"file": ("big.csv", b"mobile\n" + b"+14155550100\n" * 200_000)})
    assert small.status_code == 401  # read, then refused for want of a sign-in: not a 413
    assert upload.status_code == 401  # 2.6 MB is within the upload's own cap
