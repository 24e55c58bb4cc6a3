"""``/api/v1/suppressions`` on the real database, through the API's own error handler and dependencies.

The router is mounted on a bare app here (services/api/main.py wires it in the real service).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.bare_api import bare_api
from services.api.routes import suppressions

PROBLEM = "application/problem+json"
SENDER = "+18885550100"


@pytest.fixture(scope="module")
async def client(db_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with db_pool.acquire() as conn:
        await suppressions.QUERIES.check(conn)
    async with bare_api(db_pool, suppressions.router) as client:
        yield client


@dataclass
class Org:
    id: uuid.UUID
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    api_key: str

    async def call(self, method: str, path: str = "", json: Any = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return await self.client.request(method, "/api/v1/suppressions" + path, json=json, params=params,
                                         headers=headers)

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.pool.fetch(sql, self.id, *args)]


async def writeback_org(pool: asyncpg.Pool, client: httpx.AsyncClient, prefix: str = "+1") -> Org:
    """An organisation with iMIS write-back set up, and an admin API key named 'sam' to call as."""
    org_id = await factories.make_org(pool, default_country_prefix=prefix)
    await factories.make_imis_account(pool, org_id, username="u", password="p")
    key = await factories.make_api_key(pool, org_id, name="sam", role="admin")
    return Org(org_id, client, pool, key)


@pytest.fixture
async def org(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Org:
    return await writeback_org(db_pool, client)


async def test_an_admins_add_is_recorded_announced_and_written_back(org: Org) -> None:
    await org.pool.execute("INSERT INTO member_phone_index (org_id, phone, member_id) VALUES ($1, $2, '23145')",
                           org.id, "+14155550134")
    response = await org.call("POST", json={"phone": "(415) 555-0134", "reason": "asked by phone"})
    assert response.status_code == 200, response.text
    assert response.json() == {"phone": "+14155550134", "action": "opt_out", "changed_scopes": [""]}

    listed = (await org.call("GET")).json()
    assert [(i["phone"], i["scope"], i["source"], i["reason"]) for i in listed["items"]] == [
        ("+14155550134", "", "staff", "asked by phone")]
    history = await org.rows("SELECT action, source, actor, reason, changed FROM consent_history WHERE org_id = $1")
    assert history == [{"action": "opt_out", "source": "staff", "actor": "api-key:sam",
                        "reason": "asked by phone", "changed": True}]
    events = await org.rows(
        "SELECT key, payload FROM event_outbox WHERE payload::jsonb->>'org_id' = CAST($1::uuid AS text)")
    assert len(events) == 1 and events[0]["key"] == "+14155550134"
    assert json.loads(events[0]["payload"])["source"] == "staff"
    jobs = await org.rows("SELECT member_id, action, state FROM imis_outbox WHERE org_id = $1")
    assert jobs == [{"member_id": "23145", "action": "opt_out", "state": "pending"}]

    again = await org.call("POST", json={"phone": "+14155550134", "reason": "twice"})
    assert again.json()["changed_scopes"] == []
    assert len(await org.rows("SELECT 1 FROM consent_history WHERE org_id = $1 AND NOT changed")) == 1
    assert len(await org.rows("SELECT 1 FROM imis_outbox WHERE org_id = $1")) == 1


async def test_lift_every_scope_with_a_reason(org: Org) -> None:
    await org.pool.executemany(
        "INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, '+14155550135', $2, 'keyword')",
        [(org.id, ""), (org.id, SENDER)])
    response = await org.call("POST", "/lift", json={"phone": "+14155550135", "reason": "member called back"})
    assert response.json() == {"phone": "+14155550135", "action": "opt_in", "changed_scopes": ["", SENDER]}
    assert (await org.call("GET")).json()["total"] == 0
    history = await org.rows("SELECT scope, action, changed FROM consent_history WHERE org_id = $1 ORDER BY scope")
    assert history == [{"scope": "", "action": "opt_in", "changed": True},
                       {"scope": SENDER, "action": "opt_in", "changed": True}]

    nothing = await org.call("POST", "/lift", json={"phone": "+14155550135", "reason": "again"})
    assert nothing.json()["changed_scopes"] == []
    entries = (await org.call("GET", "/history", phone="+14155550135")).json()
    assert [(e["action"], e["changed"], e["superseded"], e["reason"]) for e in entries][0] == (
        "opt_in", False, False, "again")


async def test_search_filter_and_page(org: Org) -> None:
    numbers = [f"+1415555{n:04d}" for n in range(12)]
    await org.pool.executemany(
        "INSERT INTO suppressions (org_id, phone, source) VALUES ($1, $2, $3)",
        [(org.id, n, "keyword" if i % 3 else "import") for i, n in enumerate(numbers)])
    found = (await org.call("GET", q="0007")).json()
    assert [i["phone"] for i in found["items"]] == ["+14155550007"]
    imported = (await org.call("GET", source="import")).json()
    assert imported["total"] == 4 and {i["source"] for i in imported["items"]} == {"import"}
    page = (await org.call("GET", limit=5, offset=10)).json()
    assert page["total"] == 12 and len(page["items"]) == 2


@pytest.mark.parametrize("typed", ["(617) 555-0199", "617-555-0199", "+1 617 555 0199", "6175550199", "555-0199",
                                   "0199"])
async def test_search_takes_a_number_as_people_type_it(org: Org, typed: str) -> None:
    await org.pool.executemany("INSERT INTO suppressions (org_id, phone, source) VALUES ($1, $2, 'keyword')",
                               [(org.id, "+16175550199"), (org.id, "+16175550200")])
    response = await org.call("GET", q=typed)
    assert response.status_code == 200, response.text
    assert [i["phone"] for i in response.json()["items"]] == ["+16175550199"]


async def test_search_with_letters_says_what_to_type(org: Org) -> None:
    body = (await org.call("GET", q="Jane")).json()
    assert body["errors"] == [{"field": "q", "code": "phone_search_invalid", "message":
                               "Search with a phone number or its last digits, like (617) 555-0199 or 0199."}]


@pytest.mark.parametrize(("prefix", "typed", "stored"), [
    ("+1", "(617) 555-0199", "+16175550199"),
    ("+1", "617-555-0199", "+16175550199"),
    ("+1", "+1 617 555 0199", "+16175550199"),
    ("+44", "07400 123456", "+447400123456"),  # 07700 900xxx is Ofcom's drama range: no real number
    ("+44", "+1 617 555 0199", "+16175550199"),
])
async def test_add_and_lift_take_a_number_as_people_type_it_with_the_orgs_prefix(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, prefix: str, typed: str, stored: str
) -> None:
    org = await writeback_org(db_pool, client, prefix)
    added = await org.call("POST", json={"phone": typed, "reason": "asked by phone"})
    assert added.status_code == 200, added.text
    assert added.json()["phone"] == stored
    assert [i["phone"] for i in (await org.call("GET", q=typed)).json()["items"]] == [stored]
    lifted = await org.call("POST", "/lift", json={"phone": typed, "reason": "called back"})
    assert lifted.json()["changed_scopes"] == [""]


@pytest.mark.parametrize(("typed", "why"), [
    ("555-CALL-NOW", "the number contains letters"),
    ("617 555", "the number is too short"),
    ("(617) 555-0199 ext. 4", "the number has an extension, which SMS cannot reach"),
])
async def test_a_number_that_cannot_be_read_is_refused_with_a_sentence_saying_why(
    org: Org, typed: str, why: str
) -> None:
    response = await org.call("POST", json={"phone": typed, "reason": "x"})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "phone"
    assert error["message"] == f"This is not a phone number that can be texted: {why}."


async def test_export_is_csv_and_defuses_formulas(org: Org) -> None:
    await org.pool.executemany(
        "INSERT INTO suppressions (org_id, phone, source, reason) VALUES ($1, $2, 'staff', $3)",
        [(org.id, "+14155550140", "=HYPERLINK(\"x\")"), (org.id, "+14155550141", "requested")])
    response = await org.call("GET", "/export.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["phone", "scope", "source", "reason", "created_at"]
    assert sorted((r[0], r[3]) for r in rows[1:]) == [("+14155550140", "'=HYPERLINK(\"x\")"),
                                                      ("+14155550141", "requested")]


async def test_writebacks_show_pending_retrying_and_failed(org: Org) -> None:
    await org.pool.executemany(
        "INSERT INTO imis_outbox (org_id, member_id, phone, action, source_text, occurred_at, state, attempts, "
        "last_error) VALUES ($1, $2, '+14155550134', 'opt_out', 'STOP', now(), $3, $4, $5)",
        [(org.id, "1", "pending", 0, None), (org.id, "2", "pending", 3, "imis_unavailable: ConnectError"),
         (org.id, "3", "failed", 1, "imis_member_missing: no contact"), (org.id, "4", "done", 1, None)])
    page = (await org.call("GET", "/writebacks")).json()
    assert (page["pending"], page["retrying"], page["failed"]) == (2, 1, 1)
    assert sorted(i["member_id"] for i in page["items"]) == ["1", "2", "3"]
    failed = (await org.call("GET", "/writebacks", state="failed")).json()
    assert [i["last_error"] for i in failed["items"]] == ["imis_member_missing: no contact"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"phone": "+14155550134"}, 422, "request_invalid"),  # no reason
        ({"phone": "+14155550134", "reason": "   "}, 422, "request_invalid"),
        ({"phone": "555-CALL-NOW", "reason": "x"}, 422, "phone_has_letters"),
        ({"phone": "+14155550134", "reason": "x", "scope": "everything"}, 422, "request_invalid"),
    ],
)
async def test_bad_requests_are_problems(org: Org, body: dict[str, str], status: int, code: str) -> None:
    response = await org.call("POST", json=body)
    assert response.status_code == status and response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


async def test_each_organisation_sees_only_its_own(org: Org, db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    await org.call("POST", json={"phone": "+14155550150", "reason": "x"})
    other = await writeback_org(db_pool, client)
    assert (await other.call("GET")).json()["total"] == 0
    assert (await other.call("GET", "/history", phone="+14155550150")).json() == []
    anonymous = await client.get("/api/v1/suppressions")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"


async def test_a_staff_key_may_look_but_not_change_a_members_consent(org: Org) -> None:
    staff_key = await factories.make_api_key(org.pool, org.id, name="pat", role="staff")
    await org.pool.execute("INSERT INTO suppressions (org_id, phone, source, reason) VALUES ($1, '+14155550177', "
                           "'keyword', 'STOP')", org.id)
    headers = {"Authorization": f"Bearer {staff_key}"}
    lift = await org.client.post("/api/v1/suppressions/lift", headers=headers,
                                 json={"phone": "+14155550177", "reason": "they asked me to"})
    add = await org.client.post("/api/v1/suppressions", headers=headers,
                                json={"phone": "+14155550178", "reason": "asked by phone"})
    assert [lift.status_code, add.status_code] == [403, 403]
    assert lift.json()["code"] == "admin_only"
    assert [r["phone"] for r in await org.rows("SELECT phone FROM suppressions WHERE org_id = $1")] == ["+14155550177"]
    assert (await org.client.get("/api/v1/suppressions", headers=headers)).status_code == 200
