"""``/api/v1/settings/imis`` on the real database and iMIS stand-ins: linking checks the credentials with the
site and finds its query endpoint (/api/Query on iMIS 20.3.77 and later, else /api/IQA), Settings shows it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from harness import factories
from harness.credentials import TEST_SECRETS
from libs.common.secret_store import IMIS_PASSWORD
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.serving import ServerThread
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

pytestmark = pytest.mark.timeout(90)

CONFIG = ImisConfig(dataset="small")
LOGIN = {"username": CONFIG.username, "password": CONFIG.password}


@pytest.fixture(scope="module")
def current_site() -> Iterator[ServerThread]:
    with ServerThread(create_app(CONFIG)) as server:
        yield server


@pytest.fixture(scope="module")
def older_site() -> Iterator[ServerThread]:  # before iMIS 20.3.77: no Query service
    with ServerThread(create_app(ImisConfig(dataset="small", query_service=False))) as server:
        yield server


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@pytest.fixture
async def admin(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await signed_in(db_pool, client, org.id, role="admin")


async def stored(db_pool: asyncpg.Pool, admin: Caller) -> asyncpg.Record | None:
    return await db_pool.fetchrow("SELECT * FROM imis_accounts WHERE org_id = $1", admin.org_id)


async def test_linking_finds_the_query_endpoint_or_falls_back_to_iqa_and_settings_show_it(
    admin: Caller, db_pool: asyncpg.Pool, current_site: ServerThread, older_site: ServerThread
) -> None:
    before = (await admin.call("GET", "/api/v1/settings")).json()["imis"]
    assert before == {"linked": False, "base_url": None, "username": None, "query_endpoint": None,
                      "endpoint_checked_at": None}

    for site, endpoint, shown in [(older_site, "iqa", "/api/IQA"), (current_site, "query", "/api/Query")]:
        linked = await admin.call("PUT", "/api/v1/settings/imis", {"base_url": site.url, **LOGIN})
        assert linked.status_code == 200, linked.text
        imis = linked.json()["imis"]
        assert (imis["linked"], imis["base_url"], imis["query_endpoint"]) == (True, site.url, endpoint)
        assert imis["endpoint_checked_at"] is not None and CONFIG.password not in linked.text
        row = await stored(db_pool, admin)
        assert row is not None and row["query_endpoint"] == endpoint and row["password"].startswith("tp1:")
        async with db_pool.acquire() as conn:
            assert await TEST_SECRETS.open(conn, admin.org_id, IMIS_PASSWORD, row["password"]) == CONFIG.password
        page = await admin.call("GET", "/settings", Accept="text/html")
        assert page.status_code == 200 and shown in page.text and CONFIG.password not in page.text


async def test_refused_or_unreachable_sites_are_not_linked(admin: Caller, db_pool: asyncpg.Pool,
                                                           current_site: ServerThread) -> None:
    refused = problem(await admin.call("PUT", "/api/v1/settings/imis",
                                       {"base_url": current_site.url, "username": CONFIG.username,
                                        "password": "not-the-password"}), 422, "imis_credentials_rejected")
    assert refused["errors"][0]["field"] == "password" and "not-the-password" not in str(refused)
    problem(await admin.call("PUT", "/api/v1/settings/imis", {"base_url": "http://127.0.0.1:9", **LOGIN}),
            503, "imis_unavailable")
    problem(await admin.call("PUT", "/api/v1/settings/imis", {"base_url": "ftp://x", **LOGIN}), 422, "request_invalid")
    assert await stored(db_pool, admin) is None
    problem(await admin.call("POST", "/api/v1/settings/imis/check"), 404, "imis_account_missing")


async def test_a_link_made_before_endpoints_were_checked_uses_iqa_until_checked(
    admin: Caller, db_pool: asyncpg.Pool, current_site: ServerThread
) -> None:
    async with db_pool.acquire() as conn:
        await factories.make_imis_account(conn, admin.org_id, base_url=current_site.url)
    assert (await admin.call("GET", "/api/v1/settings")).json()["imis"]["query_endpoint"] == "iqa"
    checked = await admin.call("POST", "/api/v1/settings/imis/check")
    assert checked.status_code == 200, checked.text
    assert checked.json()["imis"]["query_endpoint"] == "query"
    row = await stored(db_pool, admin)
    assert row is not None and row["query_endpoint"] == "query" and row["endpoint_checked_at"] is not None
