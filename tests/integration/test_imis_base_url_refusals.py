"""An iMIS base URL inside our network is refused outside development: at save time (as written, and after
DNS resolution) and at every later request (a name that resolves elsewhere since, a DNS rebind). In
development and test the stand-ins on 127.0.0.1 are linked as before."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from libs.common.secret_store import IMIS_PASSWORD, SecretStore
from libs.common.settings import Settings
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.serving import ServerThread
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

pytestmark = pytest.mark.timeout(90)

CONFIG = ImisConfig(dataset="small")
LOGIN = {"username": CONFIG.username, "password": CONFIG.password}
SECRET_KEY = "a-production-secret-for-this-test-only"
REBOUND = "members.rebind.example.org"  # resolves to loopback, as a DNS rebind would make it

REFUSED = [
    "https://127.0.0.1:8443",  # loopback
    "https://[::1]/",
    "https://10.0.0.7",  # private
    "https://192.168.10.2/imis",
    "https://[fe80::1]/",  # link-local
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://metadata.google.internal/",
    f"https://{REBOUND}/",  # a public-looking name that resolves to loopback
]


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == REBOUND else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(scope="module")
def site() -> Iterator[ServerThread]:
    with ServerThread(create_app(CONFIG)) as server:
        yield server


@pytest.fixture(scope="module")
async def production(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap, env="production",
                                      secret_key=SECRET_KEY) as client:
        yield client


async def test_internal_sites_are_refused_when_saved_and_when_called(
    production: httpx.AsyncClient, db_pool: asyncpg.Pool, rebinding_dns: None
) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await signed_in(db_pool, production, org.id, role="admin")
    for url in REFUSED:
        refused = problem(await admin.call("PUT", "/api/v1/settings/imis", {"base_url": url, **LOGIN}),
                          422, "url_host_internal")
        assert refused["errors"][0]["field"] == "base_url", url
    problem(await admin.call("PUT", "/api/v1/settings/imis", {"base_url": "http://members.example.org", **LOGIN}),
            422, "url_not_https")
    assert await db_pool.fetchval("SELECT count(*) FROM imis_accounts WHERE org_id = $1", org.id) == 0

    # Saved while the name still resolved elsewhere: the check that calls iMIS resolves it again.
    async with db_pool.acquire() as conn:
        secrets = SecretStore.from_settings(Settings(secret_key=SECRET_KEY))
        sealed = await secrets.seal(conn, org.id, IMIS_PASSWORD, CONFIG.password)
    await db_pool.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) VALUES ($1, $2, $3, $4)",
                          org.id, f"https://{REBOUND}", CONFIG.username, sealed)
    problem(await admin.call("POST", "/api/v1/settings/imis/check"), 422, "url_host_internal")


async def test_development_links_the_stand_in_on_loopback(database_url: str, kafka_bootstrap: str,
                                                          db_pool: asyncpg.Pool, site: ServerThread) -> None:
    async with api_harness.api_client(database_url, kafka_bootstrap, env="development") as client:
        org = await api_harness.make_org(db_pool)
        admin: Caller = await signed_in(db_pool, client, org.id, role="admin")
        linked = await admin.call("PUT", "/api/v1/settings/imis", {"base_url": site.url, **LOGIN})
        assert linked.status_code == 200, linked.text
        assert linked.json()["imis"]["base_url"] == site.url
