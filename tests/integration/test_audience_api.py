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


# -- member lists ----------------------------------------------------------------------------------


async def make_list(caller: api_harness.Caller, name: str = "Board members") -> dict[str, Any]:
    response = await caller.call("POST", "/api/v1/lists", {"name": name, "description": "Current board"})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_list_is_created_filled_from_pasted_lines_paged_renamed_and_used_as_an_audience(
    staff: api_harness.Caller
) -> None:
    made = await make_list(staff)
    assert (made["name"], made["members"], made["created_by"]) == ("Board members", 0, staff.actor)
    path = f"/api/v1/lists/{made['id']}"
    pasted = "(907) 555-0101\n\n1001, 907-555-0102, Ada, Byrne\n12\n1002; +44 20 7946 0000\nnot a number\n"
    added = (await staff.call("POST", f"{path}/entries", {"text": pasted})).json()
    assert (added["added"], added["updated"], added["members"]) == (3, 0, 3)
    assert [(r["line"], r["text"], r["code"]) for r in added["rejected"]] == [
        (4, "12", "phone_too_short"), (6, "not a number", "phone_has_letters")]
    assert all(r["message"] for r in added["rejected"])

    again = (await staff.call("POST", f"{path}/entries", {"text": "1001, (907) 555-0199"})).json()
    assert (again["added"], again["updated"], again["members"]) == (0, 1, 3)
    first = (await staff.call("GET", f"{path}/entries?limit=2")).json()
    second = (await staff.call("GET", f"{path}/entries?limit=2&offset=2")).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and len(second["items"]) == 1
    entries = {e["member_id"]: e for e in first["items"] + second["items"]}
    assert entries["+19075550101"]["mobile"] == "+19075550101"
    assert entries["1001"]["mobile"] == "+19075550199" and entries["1001"]["merge_values"] == {}
    assert entries["1002"]["mobile"] == "+442079460000"

    renamed = (await staff.call("PATCH", path, {"name": "Board 2025"})).json()
    assert (renamed["name"], renamed["description"]) == ("Board 2025", "Current board")
    removed = (await staff.call("POST", f"{path}/entries/remove", {"member_ids": ["1002", "nobody"]})).json()
    assert removed == {"removed": 1, "members": 2}

    campaign = await draft(staff, {"kind": "list", "list_id": made["id"]})
    preview = (await staff.call("POST", "/api/v1/audiences/preview", {"audience": campaign["audience"]})).json()
    assert preview["recipients"] == 2
    described = await staff.call("POST", "/api/v1/audiences/describe", {"audience": campaign["audience"]})
    assert described.json() == {"description": "List 'Board 2025' (2 members)"}
    in_use = problem(await staff.call("DELETE", path), 409, "list_in_use")
    assert "Storm closure" in in_use["detail"]
    assert (await staff.call("DELETE", f"/api/v1/campaigns/{campaign['id']}")).status_code == 204
    assert (await staff.call("DELETE", path)).status_code == 204
    problem(await staff.call("GET", path), 404, "list_not_found")


async def test_bad_list_input_is_refused_naming_the_field(staff: api_harness.Caller) -> None:
    made = await make_list(staff)
    path = f"/api/v1/lists/{made['id']}"
    taken = problem(await staff.call("POST", "/api/v1/lists", {"name": "Board members"}), 409, "list_name_taken")
    assert "Board members" in taken["detail"]
    assert problem(await staff.call("POST", "/api/v1/lists", {"name": " "}), 422,
                   "request_invalid")["errors"][0]["field"] == "name"
    body = problem(await staff.call("POST", f"{path}/entries", {"text": "12\nhello"}), 422, "no_usable_lines")
    assert body["errors"][0]["field"] == "text" and "line 1" in body["detail"] and "line 2" in body["detail"]
    assert problem(await staff.call("POST", f"{path}/entries", {"text": "\n \n"}), 422,
                   "text_empty")["errors"][0]["field"] == "text"
    problem(await staff.call("POST", f"{path}/entries/from-upload", {"upload_id": str(uuid.uuid4())}), 404,
            "csv_upload_not_found")
    problem(await staff.call("POST", f"{path}/entries/from-run", {"run_id": str(uuid.uuid4())}), 404, "run_not_found")
    for audience, field in [({"kind": "list", "list_id": str(uuid.uuid4())}, "audience.list_id"),
                            ({"kind": "csv", "upload_id": str(uuid.uuid4())}, "audience.upload_id")]:
        response = await staff.call("POST", "/api/v1/campaigns", {"name": "Board", "audience": audience})
        assert problem(response, 422, response.json()["code"])["errors"][0]["field"] == field


async def test_another_organisations_list_upload_and_run_are_not_found(
    staff: api_harness.Caller, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    other_org = await api_harness.make_org(db_pool)
    other = await api_harness.signed_in(db_pool, client, other_org.id, role="admin")
    theirs = await make_list(other)
    await other.call("POST", f"/api/v1/lists/{theirs['id']}/entries", {"text": "(907) 555-0101"})
    path = f"/api/v1/lists/{theirs['id']}"
    for method, suffix, body in [("GET", "", None), ("PATCH", "", {"name": "Mine"}), ("DELETE", "", None),
                                 ("GET", "/entries", None), ("POST", "/entries", {"text": "(907) 555-0102"}),
                                 ("POST", "/entries/remove", {"member_ids": ["+19075550101"]})]:
        problem(await staff.call(method, path + suffix, body), 404, "list_not_found")
    assert (await staff.call("GET", "/api/v1/lists")).json()["total"] == 0
    assert (await other.call("GET", path)).json()["members"] == 1

    mine = await make_list(staff)
    upload = await client.post("/api/v1/audiences/csv", headers=other.headers,
                               files={"file": ("m.csv", b"Member ID,Mobile\n7,(907) 555-0103\n", "text/csv")})
    assert upload.status_code == 201, upload.text
    problem(await staff.call("POST", f"/api/v1/lists/{mine['id']}/entries/from-upload",
                             {"upload_id": upload.json()["id"]}), 404, "csv_upload_not_found")
    added = (await other.call("POST", f"{path}/entries/from-upload", {"upload_id": upload.json()["id"]})).json()
    assert (added["added"], added["members"]) == (1, 2)


async def test_a_list_is_filled_from_a_past_runs_recipients(
    staff: api_harness.Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await draft(staff, ALASKA)
    run_id = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, origin, state, targeted, resolved_at)
           VALUES ($1, $2, now(), 'send_now', 'completed', 2, now()) RETURNING id""",
        staff.org_id, uuid.UUID(campaign["id"]))
    rows = [(0, "501", "+19075550111", '{"first_name": "Ada"}', "queued", None),
            (1, "502", "+19075550112", None, "excluded", "opted_out"),
            (2, "", "+19075550113", None, "queued", None)]
    for position, member, e164, values, status, reason in rows:
        await db_pool.execute(
            """INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, merge_values,
                                           body, encoding, segments, status, reason)
               VALUES ($1, $2, gen_random_uuid(), $3, $4, $5, $6::jsonb, 'Hi', 'GSM-7', $7, $8, $9)""",
            run_id, position, staff.org_id, member, e164, values, 1 if status == "queued" else 0, status, reason)
    made = await make_list(staff)
    added = (await staff.call("POST", f"/api/v1/lists/{made['id']}/entries/from-run", {"run_id": str(run_id)})).json()
    assert (added["added"], added["members"], added["unusable"]) == (2, 2, 0)
    entries = (await staff.call("GET", f"/api/v1/lists/{made['id']}/entries")).json()["items"]
    assert sorted((e["member_id"], e["mobile"], e["merge_values"]) for e in entries) == [
        ("+19075550113", "+19075550113", {}), ("501", "+19075550111", {"first_name": "Ada"})]
