"""Fixtures for the stand-in tests: real servers on free 127.0.0.1 ports, a webhook sink, SDK clients.

Servers are started once per session and reset before each test; tests wait on outcomes with
``wait_for`` (a deadline, not a fixed sleep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from standins.imis.app import create_app as create_imis_app
from standins.imis.config import ImisConfig
from standins.serving import ServerThread
from standins.twilio.app import create_app as create_twilio_app
from standins.twilio.config import TwilioConfig

T = TypeVar("T")

# Fast timings so lifecycle tests finish in well under a second each.
TWILIO_TEST_CONFIG = replace(
    TwilioConfig(), tick_seconds=0.002, delivery_delay=0.05, callback_backoff=0.05, callback_timeout=2.0
)
IMIS_MEMBERS = 1_237  # not a multiple of any page size


def wait_for(probe: Callable[[], T | None], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {value!r}")
        time.sleep(0.01)


@dataclass
class Hook:
    """One request the sink received."""

    path: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    pairs: list[tuple[str, str]]
    at: float


@dataclass
class WebhookSink:
    """An HTTP endpoint that records every POST and answers 200, or 500 while ``failures[key]`` > 0, where
    ``key`` is the path or (path, MessageStatus)."""

    server: ServerThread | None = None
    hooks: list[Hook] = field(default_factory=list)
    failures: dict[str | tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def receive(self, request: Request) -> Response:
        body = (await request.body()).decode()
        pairs = parse_qsl(body, keep_blank_values=True)
        path = request.url.path
        with self.lock:
            self.hooks.append(Hook(path, str(request.url), dict(request.headers), dict(pairs), pairs, time.time()))
            for key in (path, (path, dict(pairs).get("MessageStatus", ""))):
                remaining = self.failures.get(key, 0)
                if remaining:
                    self.failures[key] = remaining - 1
                    return Response("boom", status_code=500)
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response />', media_type="text/xml")

    def at(self, path: str) -> list[Hook]:
        with self.lock:
            return [h for h in self.hooks if h.path == path]

    def clear(self) -> None:
        with self.lock:
            self.hooks.clear()
            self.failures.clear()


@pytest.fixture(scope="session")
def sink() -> Iterator[WebhookSink]:
    hooks = WebhookSink()
    app = Starlette(routes=[Route("/{path:path}", hooks.receive, methods=["POST"])])
    with ServerThread(app) as server:
        hooks.server = server
        yield hooks


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[ServerThread]:
    with ServerThread(create_twilio_app(TWILIO_TEST_CONFIG)) as server:
        yield server


@pytest.fixture
def twilio_url(twilio_server: ServerThread, sink: WebhookSink) -> str:
    httpx.post(twilio_server.url + "/_control/reset").raise_for_status()
    sink.clear()
    return twilio_server.url


@pytest.fixture
def control(twilio_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=twilio_url + "/_control", timeout=10) as client:
        yield client


SdkFactory = Callable[..., Client]


@pytest.fixture
def make_sdk(twilio_url: str) -> Iterator[SdkFactory]:
    """``make_sdk(username, password, account_sid=None, timeout=10)``: an SDK client aimed at the stand-in,
    with an explicit timeout (the SDK has none by default); its connections are closed after the test."""
    sessions = []

    def make(username: str, password: str, account_sid: str | None = None, timeout: float = 10) -> Client:
        http_client = TwilioHttpClient(timeout=timeout)
        sessions.append(http_client.session)
        client = Client(username, password, account_sid, http_client=http_client)
        client.api.base_url = twilio_url
        client.messaging.base_url = twilio_url
        return client

    yield make
    for session in sessions:
        if session is not None:
            session.close()


@pytest.fixture
def sdk(make_sdk: SdkFactory) -> Client:
    return make_sdk(TWILIO_TEST_CONFIG.account_sid, TWILIO_TEST_CONFIG.auth_token)


@pytest.fixture
def rest(twilio_url: str) -> Iterator[httpx.Client]:
    """Raw HTTP with the account's credentials, for exact JSON shapes."""
    auth = (TWILIO_TEST_CONFIG.account_sid, TWILIO_TEST_CONFIG.auth_token)
    base = f"{twilio_url}/2010-04-01/Accounts/{TWILIO_TEST_CONFIG.account_sid}"
    with httpx.Client(base_url=base, auth=auth, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def imis_server() -> Iterator[ServerThread]:
    with ServerThread(create_imis_app(ImisConfig(dataset=str(IMIS_MEMBERS)))) as server:
        yield server


@pytest.fixture
def imis_url(imis_server: ServerThread) -> str:
    httpx.post(imis_server.url + "/_control/reset").raise_for_status()
    return imis_server.url


@pytest.fixture
def imis(imis_url: str) -> Iterator[httpx.Client]:
    """An httpx client holding a fresh bearer token."""
    config = ImisConfig()
    token = httpx.post(
        imis_url + "/token",
        data={"grant_type": "password", "username": config.username, "password": config.password},
    ).json()["access_token"]
    with httpx.Client(base_url=imis_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        yield client
