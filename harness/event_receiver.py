"""A local endpoint for outgoing signed events: keeps what it accepted, refuses (500) while told to, and
checks a delivery's signature as an organisation's receiver would.

    async with receiving() as receiver:
        await register_endpoint(pool, org_id, receiver.url)
    assert all(signed(r) for r in receiver.accepted)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from harness.credentials import seal
from libs.common import event_signing
from libs.common.outgoing_events import EVENT_TYPES
from libs.common.secret_store import WEBHOOK_ENDPOINT_SECRET

SECRET = "whsec_test-secret-for-the-receiver"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    url: str = ""
    accepted: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    refuse: Callable[[Received], bool] = lambda _: False

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.accepted]


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()

    async def take(request: web.Request) -> web.Response:
        got = Received(dict(request.headers), await request.read())
        if receiver.refuse(got):
            receiver.refused.append(got)
            return web.Response(status=500, text="busy")
        receiver.accepted.append(got)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", take)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def signed(received: Received, secret: str = SECRET, body: bytes | None = None) -> bool:
    """Whether the delivery (or ``body`` in its place) carries a valid signature made with ``secret``."""
    return event_signing.verify(secret, received.headers[event_signing.TIMESTAMP_HEADER],
                                received.body if body is None else body,
                                received.headers[event_signing.SIGNATURE_HEADER], now=time.time())


async def register_endpoint(pool: asyncpg.Pool, org_id: uuid.UUID, url: str,
                            types: tuple[str, ...] = EVENT_TYPES) -> uuid.UUID:
    """The organisation's endpoint at ``url`` for ``types``, its secret ``SECRET`` sealed as the API seals it."""
    async with pool.acquire() as conn:
        sealed = await seal(conn, org_id, WEBHOOK_ENDPOINT_SECRET, SECRET)
        endpoint: uuid.UUID = await conn.fetchval(
            "INSERT INTO webhook_endpoints (org_id, url, secret, event_types) VALUES ($1, $2, $3, $4) RETURNING id",
            org_id, url, sealed, list(types))
    return endpoint
