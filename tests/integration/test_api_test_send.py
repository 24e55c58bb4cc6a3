"""``POST /api/v1/campaigns/{id}/test-send`` against the Twilio stand-in running as its own process.

The message must arrive at the stand-in (read back through its control API); a suppressed number, or one
that is not a staff test number, is refused before anything is sent; nothing is recorded as a campaign
run, but each text is in the send ledger, the day's usage and the campaign's audit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from harness import factories
from harness.credentials import TEST_SECRETS
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from libs.common.logging import mask_phone
from libs.common.twilio_facts import STATUS_RANK
from services.api import erasure
from services.api.test_send_limits import MAX_TEST_NUMBERS, TEXTS_PER_CALLER, TEXTS_PER_ORGANISATION
from services.optout.db import OptoutDb, StatusUpdate
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem

SENDER = "+18885550100"
PATH = "/api/v1/campaigns/{}/test-send"
NUMBERS = "/api/v1/settings/test-numbers"


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


def new_number() -> str:
    return f"+1617555{uuid.uuid4().int % 10_000:04d}"


async def listed(pool: asyncpg.Pool, org_id: uuid.UUID, *numbers: str) -> None:
    """Put ``numbers`` on the organisation's staff test numbers."""
    for number in numbers:
        await pool.execute("""INSERT INTO staff_test_numbers (org_id, phone, label, added_by)
                              VALUES ($1, $2, 'Staff phone', 'test') ON CONFLICT DO NOTHING""", org_id, number)


async def linked_org(pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin) -> tuple[Caller, uuid.UUID]:
    """An organisation on the stand-in's account (one organisation per account: earlier ones give it up),
    with a signed-in staff user and a draft campaign that uses a merge field. +16175550100..0109 and
    +16175550199 are its staff test numbers."""
    org = await api_harness.make_org(pool, sender=SENDER)
    await factories.make_standin_account(pool, org.id, standin.config)
    campaign_id = await factories.make_campaign(pool, org.id, name="AGM",
                                                body="Hi {{first_name}}, the AGM is on Friday.",
                                                sender_id=org.sender_id, state="draft")
    caller = await api_harness.signed_in(pool, client, org.id)
    await listed(pool, org.id, "+16175550199", *(f"+161755501{i:02d}" for i in range(10)))
    return caller, campaign_id


async def arrived(standin: TwilioStandin, to: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=standin.url) as c:
        data = (await c.get("/_control/messages", params={"to": to, "direction": "outbound-api"})).json()
    return data["messages"]


async def test_the_rendered_text_arrives_at_twilio_and_is_not_a_campaign_run(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    to = new_number()
    await listed(db_pool, caller.org_id, to)
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


async def test_a_test_text_abroad_comes_from_the_alphanumeric_sender_id_and_at_home_from_the_number(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    await db_pool.execute("UPDATE sms_accounts SET alpha_sender_id = 'PhysioAlum' WHERE org_id = $1", caller.org_id)
    abroad, home = f"+33612{uuid.uuid4().int % 1_000_000:06d}", new_number()  # France takes one
    await listed(db_pool, caller.org_id, abroad, home)

    response = await caller.call("POST", PATH.format(campaign_id), {"to": [abroad, home]})

    assert response.status_code == 200, response.text
    assert [[m["from"] for m in await arrived(standin, to)] for to in (abroad, home)] == [["PhysioAlum"], [SENDER]]


async def test_a_suppressed_number_is_refused_and_nothing_is_sent(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    ok, stopped = new_number(), new_number()
    await listed(db_pool, caller.org_id, ok, stopped)
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, $3, 'keyword')",
                          caller.org_id, stopped, SENDER)

    body = problem(await caller.call("POST", PATH.format(campaign_id), {"to": [ok, stopped]}), 409,
                   "recipient_suppressed")

    assert stopped in body["detail"]
    assert await arrived(standin, ok) == [] and await arrived(standin, stopped) == []


async def test_an_erased_number_that_said_stop_is_still_refused_when_added_again(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    stopped = new_number()
    await listed(db_pool, caller.org_id, stopped)
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'keyword')",
                          caller.org_id, stopped)
    async with db_pool.acquire() as conn, conn.transaction():
        done = await erasure.erase_member(conn, TEST_SECRETS, caller.org_id, "+1", erased_by="admin", phone=stopped)
    assert (done.counts["test_numbers"], done.counts["suppressions"]) == (1, 1)
    await listed(db_pool, caller.org_id, stopped)  # an admin adds the number again

    body = problem(await caller.call("POST", PATH.format(campaign_id), {"to": [stopped]}), 409,
                   "recipient_suppressed")
    assert stopped in body["detail"] and await arrived(standin, stopped) == []


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


async def test_a_number_that_is_not_a_staff_test_number_is_refused_and_nothing_is_sent(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    staff, stranger = new_number(), new_number()
    await listed(db_pool, caller.org_id, staff)

    body = problem(await caller.call("POST", PATH.format(campaign_id), {"to": [staff, stranger]}), 422,
                   "not_a_test_number")

    assert body["errors"][0]["field"] == "to.1"
    assert "not one of the organisation's staff test numbers" in body["errors"][0]["message"]
    assert await arrived(standin, staff) == [] and await arrived(standin, stranger) == []


async def test_each_text_is_in_the_ledger_the_days_usage_and_the_audit(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    to = new_number()
    await listed(db_pool, caller.org_id, to)

    response = await caller.call("POST", PATH.format(campaign_id), {"to": [to]})

    assert response.status_code == 200, response.text
    sid = response.json()["results"][0]["message_sid"]
    ledger = await db_pool.fetchrow(
        "SELECT run_id, test_campaign_id, to_number, sender, state, segments FROM send_ledger WHERE message_sid = $1",
        sid)
    assert dict(ledger) == {"run_id": None, "test_campaign_id": campaign_id, "to_number": to, "sender": SENDER,
                            "state": "sent", "segments": 1}
    usage = await db_pool.fetchrow("SELECT sum(messages) AS messages, sum(segments) AS segments FROM usage_daily "
                                   "WHERE org_id = $1", caller.org_id)
    assert (usage["messages"], usage["segments"]) == (1, 1)
    audit = await db_pool.fetch("SELECT actor, detail FROM campaign_audit WHERE campaign_id = $1 AND action = "
                                "'test_sent'", campaign_id)
    assert [a["actor"] for a in audit] == [caller.actor]
    detail = json.loads(audit[0]["detail"])
    assert detail["to"] == [mask_phone(to)] and to not in audit[0]["detail"]
    # Twilio is asked to report the text's status, and the report applies to its ledger row.
    assert (await arrived(standin, to))[0]["status_callback"] == "http://127.0.0.1:9/twilio/status"
    async with db_pool.acquire() as conn:
        matches = await OptoutDb.load(TEST_SECRETS).apply_statuses(
            conn, [StatusUpdate(caller.org_id, sid, "delivered", None, None)], STATUS_RANK)
    assert matches[(caller.org_id, sid)].applied
    assert await db_pool.fetchval("SELECT twilio_status FROM send_ledger WHERE message_sid = $1", sid) == "delivered"


async def test_past_the_callers_hourly_limit_it_is_a_429_with_retry_after_and_nothing_is_sent(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    numbers = [new_number() for _ in range(TEXTS_PER_CALLER // 2)]
    await listed(db_pool, caller.org_id, *numbers)
    for _ in range(2):
        assert (await caller.call("POST", PATH.format(campaign_id), {"to": numbers})).status_code == 200

    response = await caller.call("POST", PATH.format(campaign_id), {"to": numbers[:1]})

    body = problem(response, 429, "test_sends_limited")
    assert f"you may send at most {TEXTS_PER_CALLER} test texts an hour" in body["detail"]
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert len(await arrived(standin, numbers[0])) == 2
    # Another user of the organisation has a limit of their own.
    other = await api_harness.signed_in(db_pool, client, caller.org_id)
    assert (await other.call("POST", PATH.format(campaign_id), {"to": numbers[:1]})).status_code == 200


async def test_concurrent_sends_cannot_pass_the_limit_together(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    numbers = [new_number() for _ in range(TEXTS_PER_CALLER // 2)]
    await listed(db_pool, caller.org_id, *numbers)

    responses = await asyncio.gather(*(caller.call("POST", PATH.format(campaign_id), {"to": numbers})
                                       for _ in range(4)))

    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429]
    assert len(await arrived(standin, numbers[0])) == 2


async def test_past_the_organisations_hourly_limit_it_is_a_429_and_a_refused_send_uses_up_nothing(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    await db_pool.execute("INSERT INTO test_send_throttle (key, sends) VALUES ($1, $2)", f"org:{caller.org_id}",
                          TEXTS_PER_ORGANISATION - 1)
    first, second = new_number(), new_number()
    await listed(db_pool, caller.org_id, first, second)

    response = await caller.call("POST", PATH.format(campaign_id), {"to": [first, second]})

    body = problem(response, 429, "test_sends_limited")
    assert f"your organisation may send at most {TEXTS_PER_ORGANISATION} test texts" in body["detail"]
    assert "Retry-After" in response.headers
    assert await arrived(standin, first) == []
    assert (await caller.call("POST", PATH.format(campaign_id), {"to": [first]})).status_code == 200


async def test_an_unverified_senders_volume_caps_bound_test_sends(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    caller, campaign_id = await linked_org(db_pool, client, standin)
    await db_pool.execute("UPDATE senders SET verification = 'pending' WHERE org_id = $1", caller.org_id)
    await db_pool.execute("DELETE FROM sender_volume WHERE sender = $1", SENDER)  # caps count per sender
    to = new_number()
    await listed(db_pool, caller.org_id, to)
    # Without caps chosen for pending senders, it cannot text US numbers at all (as campaign sends).
    problem(await caller.call("POST", PATH.format(campaign_id), {"to": [to]}), 409, "sender_unverified")
    await db_pool.execute("INSERT INTO sender_cap_policies (org_id, verification, per_day) VALUES ($1, 'pending', 1)",
                          caller.org_id)

    assert (await caller.call("POST", PATH.format(campaign_id), {"to": [to]})).status_code == 200
    response = await caller.call("POST", PATH.format(campaign_id), {"to": [to]})

    body = problem(response, 429, "cap_reached")
    assert f"{SENDER}'s day volume cap is reached" in body["detail"] and "Retry-After" in response.headers
    assert await db_pool.fetchval("SELECT sum(segments) FROM sender_volume WHERE sender = $1 AND period = 'day'",
                                  SENDER) == 1
    assert len(await arrived(standin, to)) == 1


# ---- the staff test numbers ------------------------------------------------------------------------


async def test_admins_keep_the_staff_test_numbers_and_staff_see_them(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient,
) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await api_harness.signed_in(db_pool, client, org.id, role="admin")
    staff = await api_harness.signed_in(db_pool, client, org.id)

    added = await admin.call("POST", NUMBERS, {"phone": "(617) 555-0142", "label": "Sam's mobile"})

    assert added.status_code == 200, added.text
    assert [(n["phone"], n["label"], n["added_by"]) for n in added.json()["numbers"]] == [
        ("+16175550142", "Sam's mobile", admin.actor)]
    seen = await staff.call("GET", NUMBERS)
    assert [n["phone"] for n in seen.json()["numbers"]] == ["+16175550142"]
    assert seen.json()["max_numbers"] == MAX_TEST_NUMBERS
    problem(await staff.call("POST", NUMBERS, {"phone": "+16175550143", "label": "Mine"}), 403, "admin_only")
    problem(await staff.call("DELETE", f"{NUMBERS}/+16175550142"), 403, "admin_only")
    removed = await admin.call("DELETE", f"{NUMBERS}/+16175550142")
    assert removed.status_code == 200 and removed.json()["numbers"] == []
    problem(await admin.call("DELETE", f"{NUMBERS}/+16175550142"), 404, "test_number_not_found")


async def test_a_test_number_is_read_with_the_organisations_prefix(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient,
) -> None:
    org = await api_harness.make_org(db_pool, prefix="+44")
    admin = await api_harness.signed_in(db_pool, client, org.id, role="admin")

    added = await admin.call("POST", NUMBERS, {"phone": "07700 123456", "label": "Office"})

    assert [n["phone"] for n in added.json()["numbers"]] == ["+447700123456"]
    body = problem(await admin.call("POST", NUMBERS, {"phone": "12", "label": "Office"}), 422, "phone_too_short")
    assert body["errors"][0]["field"] == "phone"
    body = problem(await admin.call("POST", NUMBERS, {"phone": "07700 123457", "label": ""}), 422, "request_invalid")
    assert body["errors"][0]["field"] == "label"


async def test_the_list_holds_at_most_the_maximum(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await api_harness.signed_in(db_pool, client, org.id, role="admin")
    await listed(db_pool, org.id, *(f"+161755502{i:02d}" for i in range(MAX_TEST_NUMBERS)))

    body = problem(await admin.call("POST", NUMBERS, {"phone": "+16175550299", "label": "One more"}), 409,
                   "test_numbers_full")

    assert f"already has {MAX_TEST_NUMBERS} staff test numbers" in body["detail"]
    relabelled = await admin.call("POST", NUMBERS, {"phone": "+16175550200", "label": "Front desk"})
    assert relabelled.status_code == 200 and relabelled.json()["numbers"][0]["label"] == "Front desk"
