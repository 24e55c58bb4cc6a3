"""``POST /api/v1/campaigns/{id}/test-send`` against the Twilio stand-in running as its own process.

The message must arrive at the stand-in (read back through its control API); a suppressed number is
refused before anything is sent; nothing is recorded as a campaign run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.dispatch_harness import TwilioStandin, wait_http
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem
from tests.sealed_credentials import seal_credentials

SENDER = "+18885550100"
PATH = "/api/v1/campaigns/{}/test-send"


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str, standin: TwilioStandin) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap, twilio_api_base_url=standin.url) as built:
        yield built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.client_for(app) as c:
        yield c


async def linked_org(pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin) -> tuple[Caller, uuid.UUID]:
    """An organisation on the stand-in's account (one organisation per account: earlier ones give it up),
    with a signed-in staff user and a draft campaign that uses a merge field."""
    org = await api_harness.make_org(pool, sender=SENDER)
    cfg = standin.config
    await pool.execute("DELETE FROM sms_accounts WHERE account_sid = $1", cfg.account_sid)
    await pool.execute(
        """INSERT INTO sms_accounts (org_id, account_sid, auth_token, api_key_sid, api_key_secret, webhook_base_url)
           VALUES ($1, $2, $3, $4, $5, 'http://127.0.0.1:9')""",
        org.id, cfg.account_sid, cfg.auth_token, cfg.api_key_sid, cfg.api_key_secret)
    await seal_credentials(pool)
    campaign_id = await pool.fetchval(
        """INSERT INTO campaigns (org_id, name, body, sender_id, state)
           VALUES ($1, 'AGM', 'Hi {{first_name}}, the AGM is on Friday.', $2, 'draft') RETURNING id""",
        org.id, org.sender_id)
    caller = await api_harness.signed_in(pool, client, org.id)
    return caller, campaign_id


async def arrived(standin: TwilioStandin, to: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=standin.url) as c:
        data = (await c.get("/_control/messages", params={"to": to, "direction": "outbound-api"})).json()
    return data["messages"]


async def test_the_rendered_text_arrives_at_twilio_and_is_not_a_campaign_run(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    to = f"+1617555{uuid.uuid4().int % 10_000:04d}"
    national = f"({to[2:5]}) {to[5:8]}-{to[8:]}"

    response = await caller.call("POST", PATH.format(campaign_id), {"to": [national, to, "+16175550199"]})

    assert response.status_code == 200, response.text
    out = response.json()
    assert out["body"] == "Hi Alex, the AGM is on Friday." and out["sender"] == SENDER
    assert [r["to"] for r in out["results"]] == [to, "+16175550199"]  # the same number twice is sent once
    assert all(r["status"] == "queued" and r["message_sid"].startswith("SM") for r in out["results"])
    messages = await arrived(standin, to)
    assert [(m["sid"], m["from"], m["body"]) for m in messages] == [
        (out["results"][0]["message_sid"], SENDER, "Hi Alex, the AGM is on Friday.")]
    runs = await db_pool.fetchval("SELECT count(*) FROM campaign_runs WHERE campaign_id = $1", campaign_id)
    state = await db_pool.fetchval("SELECT state FROM campaigns WHERE id = $1", campaign_id)
    assert (runs, state) == (0, "draft")


async def test_a_suppressed_number_is_refused_and_nothing_is_sent(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    ok, stopped = (f"+1617555{uuid.uuid4().int % 10_000:04d}" for _ in range(2))
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, $3, 'keyword')",
                          caller.org_id, stopped, SENDER)

    body = problem(await caller.call("POST", PATH.format(campaign_id), {"to": [ok, stopped]}), 409,
                   "recipient_suppressed")

    assert stopped in body["detail"]
    assert await arrived(standin, ok) == [] and await arrived(standin, stopped) == []


@pytest.mark.parametrize(("numbers", "status", "code", "field"), [
    (["+16175550100", "12"], 422, "phone_too_short", "to.1"),
    ([f"+1617555010{i}" for i in range(6)], 422, "request_invalid", "to"),
    ([], 422, "request_invalid", "to"),
])
async def test_numbers_are_checked_before_sending(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin, numbers: list[str], status: int,
    code: str, field: str,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    body = problem(await caller.call("POST", PATH.format(campaign_id), {"to": numbers}), status, code)
    assert body["errors"][0]["field"] == field


async def test_another_organisations_campaign_is_not_found(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    _, theirs = await linked_org(db_pool, client, standin)
    other = await api_harness.make_org(db_pool)
    caller = await api_harness.signed_in(db_pool, client, other.id)
    problem(await caller.call("POST", PATH.format(theirs), {"to": ["+16175550100"]}), 404, "campaign_not_found")


async def test_without_a_linked_account_it_is_a_conflict(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    org = await api_harness.make_org(db_pool)
    campaign_id = await db_pool.fetchval(
        "INSERT INTO campaigns (org_id, name, body) VALUES ($1, 'x', 'Hello') RETURNING id", org.id)
    caller = await api_harness.signed_in(db_pool, client, org.id)
    problem(await caller.call("POST", PATH.format(campaign_id), {"to": ["+16175550100"]}), 409,
            "twilio_account_missing")


async def test_a_change_without_the_csrf_token_is_refused(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    cookie_only = {"Cookie": caller.headers["Cookie"]}
    response = await client.post(PATH.format(campaign_id), json={"to": ["+16175550100"]}, headers=cookie_only)
    problem(response, 403, "csrf_failed")


async def test_twilio_unavailable_is_a_retryable_problem(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    await standin.fault({"kind": "unavailable", "body": "json", "count": 1})
    try:
        body = problem(await caller.call("POST", PATH.format(campaign_id), {"to": ["+16175550100"]}), 503,
                       "twilio_unavailable")
    finally:
        await standin.clear_faults()
    assert "try again" in body["detail"]
