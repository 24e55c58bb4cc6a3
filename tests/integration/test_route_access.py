"""Every route against the one access table (services/api/access.py): a stranger is turned away from all
but the public ones, staff and staff keys from the admin ones, before anything is read or changed."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from libs.common.errors import ConfigurationError
from services.api import access
from services.api.access import ROUTE_ACCESS, Access
from services.api.deps import OrgDep
from services.api.main import API_PREFIX, API_ROUTERS, PAGE_ROUTERS
from tests.integration import api_harness
from tests.integration.api_harness import client_for, signed_in, with_api_key

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app, client_for(app) as client:
        yield client


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def _routes(*levels: Access) -> list[tuple[str, str]]:
    return sorted(route for route, wanted in ROUTE_ACCESS.items() if wanted in levels)


def _mounted() -> set[tuple[str, str]]:
    routes = [("", r) for router in PAGE_ROUTERS for r in router.routes]
    routes += [(API_PREFIX, r) for router in API_ROUTERS for r in router.routes]
    found = {(m, prefix + r.path) for prefix, r in routes if isinstance(r, APIRoute) for m in r.methods}
    return found | {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def test_the_table_names_exactly_the_routes_the_app_has() -> None:
    assert set(ROUTE_ACCESS) == _mounted()


def test_a_route_guarded_otherwise_than_the_table_says_stops_the_app_from_starting() -> None:
    router_app = FastAPI()

    @router_app.post("/api/v1/suppressions")
    async def add(org: OrgDep) -> None: ...  # staff could reach it: the table says admins only

    @router_app.get("/api/v1/unlisted")
    async def unlisted() -> None: ...

    routes = [("", r) for r in router_app.routes if isinstance(r, APIRoute)]
    with pytest.raises(ConfigurationError) as refused:
        access.check_routes(routes)
    assert "POST /api/v1/suppressions must be admin but is guarded as signed_in" in refused.value.message
    assert "GET /api/v1/unlisted is not in services/api/access.py" in refused.value.message


@pytest.mark.parametrize(("method", "path"), _routes(Access.SIGNED_IN, Access.ADMIN))
async def test_a_stranger_is_turned_away(client: httpx.AsyncClient, method: str, path: str) -> None:
    url = _concrete(path)
    if path.startswith(API_PREFIX):
        response = await client.request(method, url, json={})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthenticated"
    else:
        response = await client.request(method, url, headers=HTML)
        assert response.status_code == 303 and response.headers["location"].startswith("/sign-in?next=")


@pytest.mark.parametrize(("method", "path"), _routes(Access.ADMIN))
async def test_staff_and_staff_keys_are_refused_the_admin_routes(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, method: str, path: str
) -> None:
    org = await api_harness.make_org(db_pool)
    callers = [await signed_in(db_pool, client, org.id), await with_api_key(db_pool, client, org.id)]
    for caller in callers:
        if path.startswith(API_PREFIX):
            response = await caller.call(method, _concrete(path), {})
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "admin_only"
        else:
            response = await client.request(method, _concrete(path), headers={**caller.headers, **HTML})
            assert response.status_code == 403
