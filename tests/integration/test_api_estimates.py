"""The audience preview's estimate (scaled from iMIS's TotalCount, rendered per member, as a range) and the
up-front refusals of send-now and schedule, through the API on the real app and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from harness.credentials import seal_credentials
from services.api import audience_sample, uploads_db
from standins.imis.app import create_app as create_imis
from standins.imis.config import ImisConfig
from standins.serving import ServerThread
from tests.integration import api_harness
from tests.integration.api_harness import Caller, client_for, problem, with_api_key

PREVIEW = "/api/v1/audiences/preview"
IQA = {"kind": "iqa", "query": "$/Textpulse/SMS Audience"}
# 100 GSM-7 characters with a 4-letter name: one segment; a name with a UCS-2 letter makes the text
# UCS-2, where one segment holds only 70 units, so those members' texts take two.
BODY = "Hi {{first_name}}, the chapter meets on Tuesday at 7 pm in the main hall. Bring a friend along!!"


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app:
        async with app.state.pool.acquire() as conn:
            await uploads_db.QUERIES.check(conn)
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
async def caller(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await with_api_key(db_pool, client, org.id)


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_imis(ImisConfig(dataset="1200"))) as server:
        yield server


async def upload(caller: Caller, rows: list[tuple[str, str, str]]) -> str:
    data = "ID,Mobile,First Name\n" + "".join(f"{i},{m},{n}\n" for i, m, n in rows)
    response = await caller.client.post("/api/v1/audiences/csv", files={"file": ("m.csv", data.encode(), "text/csv")},
                                        headers=caller.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def members(names: list[str]) -> list[tuple[str, str, str]]:
    return [(str(i + 1), f"+1617555{i:04d}", name) for i, name in enumerate(names)]


async def preview(caller: Caller, audience: dict[str, Any], body: str | None = BODY) -> dict[str, Any]:
    response = await caller.call("POST", PREVIEW, {"audience": audience, "body": body})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_iqa_preview_scales_its_sample_to_the_query_total_count(
    caller: Caller, db_pool: asyncpg.Pool, imis: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db_pool.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) "
                          "VALUES ($1, $2, 'SMS_INTEGRATION', 'standin-password')", caller.org_id, imis.url)
    await seal_credentials(db_pool)
    whole = await preview(caller, IQA)
    total = whole["audience_size"]  # the members of the 1,200 the query selects, every page read
    assert whole["complete"] and whole["members"] == total and 500 < total < 1200
    assert whole["estimate"]["exact"] and whole["estimate"]["recipients"] == whole["recipients"]

    monkeypatch.setattr(audience_sample, "PREVIEW", replace(audience_sample.PREVIEW, imis_pages=1))
    sampled = await preview(caller, IQA)
    assert (sampled["members"], sampled["audience_size"], sampled["complete"]) == (500, total, False)
    assert 0 < sampled["recipients"] < 500
    estimate = sampled["estimate"]
    assert not estimate["exact"]
    assert estimate["recipients"] == round(sampled["recipients"] * total / 500)  # iMIS's TotalCount, not 500
    segments = estimate["segments"]
    assert segments["low"] <= segments["expected"] <= segments["high"]
    assert segments["expected"] >= estimate["recipients"]


async def test_ucs2_names_raise_the_segments_and_cost_of_those_members(caller: Caller) -> None:
    upload_id = await upload(caller, members(["Anna", "Bert", "Zoë", "Łucja"]))
    result = await preview(caller, {"kind": "csv", "upload_id": upload_id})
    assert result["encodings"] == {"GSM-7": 2, "UCS-2": 2}
    assert result["segments_per_recipient"] == {"min": 1, "median": 1, "max": 2}
    # Every member was read: the figures are exact, 1 + 1 + 2 + 2 segments at $0.0083.
    assert result["estimate"]["exact"] and result["estimate"]["recipients"] == 4
    assert result["estimate"]["segments"] == {"low": 6, "expected": 6, "high": 6}
    assert result["estimate"]["cost"] == {"low": "0.05", "expected": "0.05", "high": "0.05"}
    # The composer's counter, with its one sample member, says 1 segment each: 4 for the same audience.
    counter = (await caller.call("POST", "/api/v1/messages/preview", {"body": BODY, "recipients": 4})).json()
    assert counter["estimate"]["segments"] == 4


async def test_a_sampled_audience_is_estimated_as_a_range(caller: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    upload_id = await upload(caller, members(["Anna", "Zoë", "Bert", "Łucja"] + ["Carl"] * 6))
    monkeypatch.setattr(audience_sample, "PREVIEW", replace(audience_sample.PREVIEW, rows=4))
    result = await preview(caller, {"kind": "csv", "upload_id": upload_id})
    assert (result["members"], result["audience_size"], result["complete"]) == (4, 10, False)
    estimate = result["estimate"]
    assert estimate["recipients"] == 10 and not estimate["exact"]
    # The 4 read take 6 segments; the 6 not read take 1 (the fewest seen) to 2 (the most) each.
    assert estimate["segments"] == {"low": 12, "expected": 15, "high": 18}
    assert estimate["cost"] == {"low": "0.10", "expected": "0.12", "high": "0.15"}


# -- send now and schedule refuse up front -------------------------------------------------------------


async def draft(caller: Caller, body: str, audience: dict[str, Any]) -> str:
    response = await caller.call("POST", "/api/v1/campaigns", {"name": "Notice", "body": body, "audience": audience})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def send_now(caller: Caller, campaign_id: str) -> httpx.Response:
    return await caller.call("POST", f"/api/v1/campaigns/{campaign_id}/send-now",
                             **{"Idempotency-Key": str(uuid.uuid4())})


async def schedule(caller: Caller, campaign_id: str) -> httpx.Response:
    return await caller.call("POST", f"/api/v1/campaigns/{campaign_id}/schedule", {"at": "2031-05-01T09:00"},
                             **{"Idempotency-Key": str(uuid.uuid4())})


def refused(response: httpx.Response, field: str, code: str) -> str:
    body = problem(response, 422, code)
    assert body["errors"][0]["field"] == field
    return str(body["errors"][0]["message"])


async def runs(db_pool: asyncpg.Pool, caller: Caller) -> int:
    return int(await db_pool.fetchval("SELECT count(*) FROM campaign_runs WHERE org_id = $1", caller.org_id))


async def test_a_text_over_ten_segments_is_refused_with_the_composers_words(
    caller: Caller, db_pool: asyncpg.Pool
) -> None:
    upload_id = await upload(caller, members(["Anna"]))
    long_body = "Hi {{first_name}}, " + "the meeting is on Tuesday. " * 57
    campaign_id = await draft(caller, long_body, {"kind": "csv", "upload_id": upload_id})
    counter = (await caller.call("POST", "/api/v1/messages/preview", {"body": long_body})).json()
    words = "11 segments is over 10: Textpulse will not send a text this long to anyone."
    assert counter["segments"] == 11 and counter["refusal"] == {"field": "body", "code": "segments_over_limit",
                                                                 "message": words}
    assert refused(await send_now(caller, campaign_id), "body", "segments_over_limit") == words
    assert refused(await schedule(caller, campaign_id), "body", "segments_over_limit") == words
    assert await runs(db_pool, caller) == 0


async def test_an_audience_nobody_in_which_would_receive_it_is_refused(caller: Caller, db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES "
                          "($1, '+16175550000', '', 'keyword'), ($1, '+16175550001', '', 'keyword')", caller.org_id)
    upload_id = await upload(caller, members(["Anna", "Bert"]) + [("3", "", "Cy")])
    campaign_id = await draft(caller, BODY, {"kind": "csv", "upload_id": upload_id})
    words = "Nobody would receive it: all 3 members are left out (2 opted out, 1 without a mobile number)."
    assert refused(await send_now(caller, campaign_id), "audience", "audience_empty") == words
    found = await preview(caller, {"kind": "csv", "upload_id": upload_id})
    assert found["refusal"] == {"field": "audience", "code": "audience_empty", "message": words}

    list_id = await db_pool.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'Empty') RETURNING id",
                                     caller.org_id)
    empty = await draft(caller, BODY, {"kind": "list", "list_id": str(list_id)})
    assert refused(await schedule(caller, empty), "audience", "audience_empty") == (
        "Nobody would receive it: the audience has no members.")
    assert await runs(db_pool, caller) == 0


async def test_an_unverified_sender_to_us_numbers_is_refused(caller: Caller, db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("UPDATE senders SET verification = 'pending' WHERE org_id = $1", caller.org_id)
    upload_id = await upload(caller, members(["Anna", "Bert"]))
    campaign_id = await draft(caller, BODY, {"kind": "csv", "upload_id": upload_id})
    words = "+18885550100 is pending and cannot text US/Canada; 2 of 2 recipients are there"
    assert refused(await send_now(caller, campaign_id), "sender_id", "sender_unverified") == words
    found = await preview(caller, {"kind": "csv", "upload_id": upload_id})
    assert found["refusal"] == {"field": "sender_id", "code": "sender_unverified", "message": words}
    await db_pool.execute("UPDATE senders SET verification = 'verified' WHERE org_id = $1", caller.org_id)
    assert (await send_now(caller, campaign_id)).status_code == 202
    assert await runs(db_pool, caller) == 1


async def test_an_audience_over_the_member_cap_is_refused_up_front(caller: Caller, db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("UPDATE organisations SET run_member_cap = 2 WHERE id = $1", caller.org_id)
    upload_id = await upload(caller, members(["Anna", "Bert", "Cleo"]))
    campaign_id = await draft(caller, BODY, {"kind": "csv", "upload_id": upload_id})
    words = ("The audience has 3 members; one run may have at most 2. Narrow the audience, or ask an admin to "
             "raise the organisation's member cap.")
    assert refused(await send_now(caller, campaign_id), "audience", "audience_too_large") == words
    assert refused(await schedule(caller, campaign_id), "audience", "audience_too_large") == words
    found = await preview(caller, {"kind": "csv", "upload_id": upload_id})
    assert found["refusal"] == {"field": "audience", "code": "audience_too_large", "message": words}
    assert await runs(db_pool, caller) == 0

    await db_pool.execute("UPDATE organisations SET run_member_cap = NULL WHERE id = $1", caller.org_id)
    assert (await preview(caller, {"kind": "csv", "upload_id": upload_id}))["refusal"] is None  # 250,000
    assert (await send_now(caller, campaign_id)).status_code == 202
    assert await runs(db_pool, caller) == 1


async def test_imis_not_answering_does_not_block_a_send_but_says_so(caller: Caller, db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) "
                          "VALUES ($1, 'http://127.0.0.1:9', 'SMS_INTEGRATION', 'x')", caller.org_id)
    await seal_credentials(db_pool)
    campaign_id = await draft(caller, BODY, IQA)
    response = await send_now(caller, campaign_id)
    assert response.status_code == 202, response.text
    [warning] = response.json()["warnings"]
    assert warning.startswith("the audience was not checked before sending (iMIS did not answer")
    assert await runs(db_pool, caller) == 1
