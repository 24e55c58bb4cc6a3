"""``/api/v1/webhook-endpoints`` on real PostgreSQL: an endpoint's secret is shown once and stored sealed; URLs
are checked as the webhook base URL is; deliveries are listed and redelivered; another organisation neither
sees nor changes them, and staff are refused.

The router is mounted on a bare app as production configures it (services/api/main.py wires it in the real
service), as in test_revocations.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.bare_api import bare_api
from harness.credentials import TEST_SECRETS
from libs.common.envelope import is_sealed
from libs.common.secret_store import WEBHOOK_ENDPOINT_SECRET
from services.api.deps import WebConfig
from services.api.routes import webhook_endpoints

pytestmark = pytest.mark.timeout(90)
PATH = "/api/v1/webhook-endpoints"
URL = "https://crm.example.org/textpulse-events"


@pytest.fixture(scope="module")
async def api(db_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with db_pool.acquire() as conn:
        await webhook_endpoints.QUERIES.check(conn)
    web = WebConfig(public_base_url="https://app.example.org", env="production")
    async with bare_api(db_pool, webhook_endpoints.router, web=web) as client:
        yield client


async def key_of(pool: asyncpg.Pool, org_id: uuid.UUID, role: str = "admin") -> dict[str, str]:
    key = await factories.make_api_key(pool, org_id, name=f"{role}-{uuid.uuid4().hex[:6]}", role=role)
    return {"Authorization": f"Bearer {key}"}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_an_endpoint_is_created_with_its_secret_shown_once_and_stored_sealed(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool,
) -> None:
    org = await factories.make_org(db_pool)
    admin = await key_of(db_pool, org)
    created = await api.post(PATH, headers=admin, json={"url": URL, "event_types": ["delivered", "clicked"]})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    listed = (await api.get(PATH, headers=admin)).json()
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    stored = await db_pool.fetchval("SELECT secret FROM webhook_endpoints WHERE id = $1", uuid.UUID(endpoint["id"]))
    assert is_sealed(stored) and endpoint["secret"] not in stored
    async with db_pool.acquire() as conn:
        assert await TEST_SECRETS.open(conn, org, WEBHOOK_ENDPOINT_SECRET, stored) == endpoint["secret"]

    unknown = problem(await api.post(PATH, headers=admin, json={"url": URL, "event_types": ["bounced"]}), 422,
                      "request_invalid")
    assert "run_completed" in unknown["detail"]
    supplied = await api.post(PATH, headers=admin, json={"url": URL, "event_types": ["replied"],
                                                         "secret": "my-own-secret-of-32-characters!!"})
    assert supplied.json()["secret"] == "my-own-secret-of-32-characters!!"
    changed = await api.patch(f"{PATH}/{endpoint['id']}", headers=admin,
                              json={"enabled": False, "event_types": ["opted_out", "opted_in"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.json()["event_types"] == ["opted_out", "opted_in"]
    assert (await api.delete(f"{PATH}/{endpoint['id']}", headers=admin)).status_code == 204
    assert [e["id"] for e in (await api.get(PATH, headers=admin)).json()] == [supplied.json()["id"]]
    actions = await db_pool.fetch("SELECT action FROM audit_events WHERE org_id = $1 ORDER BY id", org)
    assert [a["action"] for a in actions] == ["webhook_endpoint.created", "webhook_endpoint.created",
                                              "webhook_endpoint.updated", "webhook_endpoint.deleted"]


@pytest.mark.parametrize(("url", "code"), [
    ("http://crm.example.org/hook", "url_not_https"),
    ("https://10.0.0.5/hook", "url_host_internal"),
    ("https://169.254.169.254/latest", "url_host_internal"),
    ("https://localhost/hook", "url_host_internal"),
    ("https://user:pw@crm.example.org/hook", "url_has_credentials"),
    ("https://crm.example.org:port/hook", "url_invalid"),
])
async def test_a_bad_url_is_refused_with_a_clear_error(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool, url: str, code: str,
) -> None:
    org = await factories.make_org(db_pool)
    admin = await key_of(db_pool, org)
    body = problem(await api.post(PATH, headers=admin, json={"url": url, "event_types": ["sent"]}), 422, code)
    assert body["detail"].startswith("url: ")
    created = (await api.post(PATH, headers=admin, json={"url": URL, "event_types": ["sent"]})).json()
    problem(await api.patch(f"{PATH}/{created['id']}", headers=admin, json={"url": url}), 422, code)


async def test_deliveries_are_listed_and_redelivered_and_other_organisations_see_nothing(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool,
) -> None:
    org, other = await factories.make_org(db_pool), await factories.make_org(db_pool)
    admin, intruder = await key_of(db_pool, org), await key_of(db_pool, other)
    endpoint = (await api.post(PATH, headers=admin, json={"url": URL, "event_types": ["opted_out"]})).json()
    event = uuid.uuid4()
    await db_pool.execute("INSERT INTO webhook_events (id, org_id, type, member_key, body, occurred_at)"
                          " VALUES ($1, $2, 'opted_out', '+14155550134', '{}', now())", event, org)
    delivery = await db_pool.fetchval(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, org_id, member_key, attempts, last_status, last_error,"
        " failed_at) VALUES ($1, $2, $3, '+14155550134', 9, 500, 'HTTP 500', now()) RETURNING id",
        event, uuid.UUID(endpoint["id"]), org)
    deliveries = f"{PATH}/{endpoint['id']}/deliveries"
    failed = (await api.get(deliveries, headers=admin, params={"state": "failed"})).json()
    assert [(d["id"], d["state"], d["last_status"], d["next_attempt_at"]) for d in failed] == [
        (delivery, "failed", 500, None)]
    assert (await api.get(deliveries, headers=admin, params={"state": "delivered"})).json() == []
    assert [e["failed"] for e in (await api.get(PATH, headers=admin)).json()] == [1]

    # Another organisation: nothing listed, nothing found, nothing changed; staff may not look at all.
    assert (await api.get(PATH, headers=intruder)).json() == []
    problem(await api.get(deliveries, headers=intruder), 404, "endpoint_not_found")
    problem(await api.post(f"{deliveries}/{delivery}/redeliver", headers=intruder), 404, "delivery_not_found")
    problem(await api.patch(f"{PATH}/{endpoint['id']}", headers=intruder, json={"enabled": False}), 404,
            "endpoint_not_found")
    problem(await api.delete(f"{PATH}/{endpoint['id']}", headers=intruder), 404, "endpoint_not_found")
    problem(await api.get(PATH, headers=await key_of(db_pool, org, role="staff")), 403, "admin_only")
    assert (await api.get(PATH, headers=admin)).json()[0]["enabled"] is True

    again = await api.post(f"{deliveries}/{delivery}/redeliver", headers=admin)
    assert again.status_code == 202, again.text
    assert again.json()["state"] == "pending" and again.json()["attempts"] == 0
    assert [d["state"] for d in (await api.get(deliveries, headers=admin)).json()] == ["pending"]
