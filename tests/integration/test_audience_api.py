"""A campaign's audience through the API: one model (``libs.common.audience``) for saving, previewing and
resolving, so an IQA's parameters survive every save and an unknown field is refused, never dropped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration import api_harness
from tests.integration.api_harness import problem

ALASKA = {"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "parameters": ["eq:AK", ""]}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@pytest.fixture
async def staff(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> api_harness.Caller:
    org = await api_harness.make_org(db_pool)
    return await api_harness.signed_in(db_pool, client, org.id)


async def draft(caller: api_harness.Caller, audience: dict[str, Any]) -> dict[str, Any]:
    response = await caller.call("POST", "/api/v1/campaigns", {"name": "Storm closure", "body": "Offices closed.",
                                                               "audience": audience})
    assert response.status_code == 201, response.text
    return response.json()


async def stored_audience(pool: asyncpg.Pool, campaign_id: str) -> str:
    return await pool.fetchval("SELECT audience::text FROM campaigns WHERE id = $1", uuid.UUID(campaign_id))


async def test_an_iqa_audience_keeps_its_parameters_in_order_through_create_duplicate_and_edit(
    staff: api_harness.Caller, db_pool: asyncpg.Pool
) -> None:
    created = await draft(staff, ALASKA)
    assert created["audience"] == ALASKA
    copy = (await staff.call("POST", f"/api/v1/campaigns/{created['id']}/duplicate")).json()
    assert copy["audience"] == ALASKA
    before = await stored_audience(db_pool, copy["id"])
    edited = await staff.call("PATCH", f"/api/v1/campaigns/{copy['id']}",
                              {"name": "Copy", "audience": copy["audience"]})
    assert edited.status_code == 200, edited.text
    assert edited.json()["audience"] == ALASKA
    assert await stored_audience(db_pool, copy["id"]) == before


@pytest.mark.parametrize(
    ("audience", "field", "code"),
    [
        ({"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "params": ["eq:AK"]}, "audience.params",
         "extra_forbidden"),
        ({"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "parameters": "eq:AK"}, "audience.parameters",
         "tuple_type"),
        ({"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "parameters": ["eq:AK", 7]},
         "audience.parameters.1", "string_type"),
        ({"kind": "iqa", "query": "Members By Chapter"}, "audience.query", "string_pattern_mismatch"),
        ({"kind": "csv", "list_id": str(uuid.uuid4()), "upload_id": str(uuid.uuid4())}, "audience.list_id",
         "extra_forbidden"),
        ({"query": "$/Textpulse/Members By Chapter"}, "audience", "audience_kind_invalid"),
    ],
)
async def test_an_audience_the_service_could_not_use_is_refused_naming_its_field(
    staff: api_harness.Caller, db_pool: asyncpg.Pool, audience: dict[str, Any], field: str, code: str
) -> None:
    campaign = await draft(staff, ALASKA)
    before = await stored_audience(db_pool, campaign["id"])
    for response in (await staff.call("PATCH", f"/api/v1/campaigns/{campaign['id']}", {"audience": audience}),
                     await staff.call("POST", "/api/v1/audiences/preview", {"audience": audience})):
        body = problem(response, 422, "request_invalid")
        assert [(e["field"], e["code"]) for e in body["errors"]] == [(field, code)], body
        assert field in body["detail"]
    assert await stored_audience(db_pool, campaign["id"]) == before
