"""Shared by the API's tests: the real app on the test database, and organisations whose callers are
signed in (a session cookie with its CSRF token) or hold an API key.

Organisations and users are made by ``harness.factories`` (one password hash per process: argon2 costs
~50 ms a hash); sessions are started with the same function sign-in uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from harness import factories
from harness.kafka import as_access, own_topics
from harness.processes import free_port
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.settings import Settings, load_settings
from libs.common.topics import CAMPAIGN_DUE, CONSENT
from services.api import auth, auth_db
from services.api.main import build
from tests.kafka_cluster import settings_overrides

PROBLEM = "application/problem+json"


def api_settings(database_url: str, kafka_bootstrap: KafkaAccess | str, prefix: str, **overrides: Any) -> Settings:
    # Every test signs in from 127.0.0.1 into one database a session: the per-address limit has tests of its own.
    # Production refuses the suite's cheap password hashing: an app built as production hashes as production does.
    defaults = {"env": "test", "sign_in_max_per_address": 10_000} | (
        {"password_hash_cost": "standard"} if overrides.get("env") == "production" else {})
    return load_settings(database_url=database_url, **settings_overrides(kafka_bootstrap), topic_prefix=prefix,
                         db_pool_min_size=1, db_pool_max_size=5, **(defaults | overrides))


@asynccontextmanager
async def api_app(database_url: str, kafka_bootstrap: KafkaAccess | str, **overrides: Any) -> AsyncIterator[FastAPI]:
    """The API app as ``services.api.main.build`` makes it, on the test database and its own topics."""
    async with own_topics(kafka_bootstrap) as prefix:
        await ensure_topics(as_access(kafka_bootstrap), [CAMPAIGN_DUE, CONSENT], prefix=prefix)
        async with build(api_settings(database_url, kafka_bootstrap, prefix, **overrides)) as service:
            yield service.app


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: pytest keeps Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving_api(database_url: str, kafka_bootstrap: KafkaAccess | str, **overrides: Any) -> AsyncIterator[str]:
    """The API as ``services.api.main.build`` makes it, served by uvicorn on a free port; yields its URL."""
    async with own_topics(kafka_bootstrap) as prefix:
        await ensure_topics(as_access(kafka_bootstrap), [CAMPAIGN_DUE, CONSENT], prefix=prefix)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = api_settings(database_url, kafka_bootstrap, prefix, public_base_url=url, http_port=port, **overrides)
        async with build(settings) as service:
            server = _Server(uvicorn.Config(service.app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            yield url
            server.should_exit = True
            await task


def client_for(app: FastAPI, *, keep_cookies: bool = False) -> httpx.AsyncClient:
    """An httpx client on ``app``. Without ``keep_cookies`` it forgets every cookie it is sent, so a
    client shared by many tests never carries one test's session into the next: callers send their own."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")
    if not keep_cookies:
        async def forget(response: httpx.Response) -> None:
            client.cookies.clear()

        client.event_hooks["response"].append(forget)
    return client


@asynccontextmanager
async def api_client(
    database_url: str, kafka_bootstrap: KafkaAccess | str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_app(database_url, kafka_bootstrap, **overrides) as app, client_for(app) as client:
        yield client


@dataclass
class Caller:
    """One way into one organisation: a signed-in user's session, or an API key."""

    org_id: uuid.UUID
    client: httpx.AsyncClient
    headers: dict[str, str]
    actor: str
    user_id: uuid.UUID | None = None

    async def call(self, method: str, path: str, json: Any = None, **headers: str) -> httpx.Response:
        return await self.client.request(method, path, json=json, headers={**self.headers, **headers})


@dataclass
class Org:
    id: uuid.UUID
    sender_id: uuid.UUID
    slug: str
    callers: dict[str, Caller] = field(default_factory=dict)


async def make_org(
    pool: asyncpg.Pool, *, prefix: str = "+1", time_zone: str = "America/New_York", max_segments: int | None = None,
    sender: str = "+18885550100",
) -> Org:
    slug = factories.new_slug()
    org_id = await factories.make_org(pool, slug=slug, name=f"Org {slug[-6:]}", time_zone=time_zone,
                                      default_country_prefix=prefix)
    sender_id = await factories.make_sender(pool, org_id, sender, is_default=True)
    if max_segments is not None:
        await factories.make_sms_account(pool, org_id, max_segments=max_segments)
    return Org(org_id, sender_id, slug)


make_user = factories.make_user


async def signed_in(pool: asyncpg.Pool, client: httpx.AsyncClient, org_id: uuid.UUID, *, role: str = "staff",
                    email: str | None = None) -> Caller:
    """A user of ``role`` with a fresh session: the cookie and the CSRF header a page would send."""
    user_id, email = await make_user(pool, org_id, role=role, email=email)
    return Caller(org_id, client, await session_headers(pool, user_id, org_id), email, user_id)


async def session_headers(pool: asyncpg.Pool, user_id: uuid.UUID, org_id: uuid.UUID) -> dict[str, str]:
    """A fresh session of ``user_id``: its cookie and the CSRF header a page would send."""
    async with pool.acquire() as conn:
        session = await auth_db.start_session(conn, user_id, org_id)
    return {"Cookie": f"{auth.cookie_name(False)}={session.token}", auth.CSRF_HEADER: session.csrf_token}


async def with_api_key(pool: asyncpg.Pool, client: httpx.AsyncClient, org_id: uuid.UUID, *, role: str = "staff",
                       name: str = "iMIS sync") -> Caller:
    key = await factories.make_api_key(pool, org_id, name=name, role=role)
    return Caller(org_id, client, {"Authorization": f"Bearer {key}"}, f"api-key:{name}")


def idempotency_key() -> dict[str, str]:
    """A fresh ``Idempotency-Key`` header, as send-now and schedule require one (as ``**headers``)."""
    return {"Idempotency-Key": f"key-{uuid.uuid4()}"}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["type"] == f"urn:textpulse:problem:{code}"
    return body
