"""Each write-back target through the opt-out service against the iMIS stand-in over HTTP: TEXTUNSUB
activities (iMIS Text Messenger's), the SMS communication preference, and one organisation's slow iMIS
never holding up another's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from harness.factories import make_imis_account
from libs.common.imis import ImisSession
from libs.common.imis_activities import record_unsubscribe
from libs.common.imis_iqa import ImisQueryClient
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.imis.parties import SMS_COMMUNICATION_TYPE_ID
from standins.serving import ServerThread
from tests.conftest import eventually
from tests.integration.optout_harness import OptoutHarness, Org, running_optout

pytestmark = pytest.mark.timeout(120)

TEXT_MESSENGER_AUDIENCE = "$/Text Messenger/SMS Audience"


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_app(ImisConfig(dataset="small", preexisting_opt_out_every=0))) as server:
        yield server


@pytest.fixture(scope="module")
def slow_imis() -> Iterator[ServerThread]:
    with ServerThread(create_app(ImisConfig(dataset="small", preexisting_opt_out_every=0))) as server:
        yield server


@pytest.fixture(scope="module")
async def optout(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool, imis: ServerThread
) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool, imis_base_url=imis.url) as harness:
        yield harness


@pytest.fixture
async def control(imis: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=imis.url + "/_control") as client:
        yield client
        await client.post("/reset")


async def _org(optout: OptoutHarness, phone: str, *members: str, **account: Any) -> Org:
    org = await optout.new_org()
    await make_imis_account(optout.pool, org.id, **account)
    async with optout.pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO member_phone_index (org_id, phone, member_id, last_run_id) VALUES ($1, $2, $3, $4)",
            [(org.id, phone, m, org.run_id) for m in members])
    return org


async def _settled(optout: OptoutHarness, org: Org, count: int) -> list[dict[str, Any]] | None:
    rows = await optout.fetch("SELECT member_id, action, state, last_error FROM imis_outbox WHERE org_id = $1 "
                              "ORDER BY id", org.id)
    jobs = [dict(r) for r in rows]
    return jobs if len(jobs) == count and all(j["state"] != "pending" for j in jobs) else None


async def _activities(control: httpx.AsyncClient, member: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = (await control.get("/activities", params={"party_id": member})).json()["activities"]
    return body


async def _audience_ids(imis: ServerThread) -> set[str]:
    async with httpx.AsyncClient(timeout=30) as http:
        client = ImisQueryClient(http, imis.url, "SMS_INTEGRATION", "standin-password")
        return {str(row["ID"]) async for page in client.pages(TEXT_MESSENGER_AUDIENCE, [""]) for row in page.rows}


async def test_stop_writes_textunsub_and_the_text_messenger_iqa_leaves_the_member_out(
    optout: OptoutHarness, control: httpx.AsyncClient, imis: ServerThread
) -> None:
    phone = "+14155550139"  # Jun Lee (23156) and Mei Lee (23157) share it
    org = await _org(optout, phone, "23156", "23157", writeback_target="activity")
    before = await _audience_ids(imis)
    assert {"23156", "23157"} <= before

    started = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    await optout.inbound(org, "STOP", phone)
    jobs = await eventually(lambda: _settled(optout, org, 2), timeout=20)
    assert [(j["member_id"], j["state"], j["last_error"]) for j in jobs] == [
        ("23156", "done", None), ("23157", "done", None)]
    for member in ("23156", "23157"):
        [activity] = await _activities(control, member)
        assert activity["ACTIVITY_TYPE"] == "TEXTUNSUB" and activity["UF_1"] == phone
        assert activity["PartyId"] == member
        assert datetime.fromisoformat(activity["TRANSACTION_DATE"]) >= started  # UTC, zone-less
    assert (await _audience_ids(imis)) == before - {"23156", "23157"}  # the next run leaves them out

    await optout.inbound(org, "START", phone)
    await eventually(lambda: _settled(optout, org, 4), timeout=20)
    for member in ("23156", "23157"):
        [activity] = await _activities(control, member)
        assert activity["ACTIVITY_TYPE"] == "TEXTUNSUB_A" and activity["UF_1"] == phone
    assert (await _audience_ids(imis)) == before


async def test_a_refused_post_is_retried_and_a_repeat_writes_no_second_activity(
    optout: OptoutHarness, control: httpx.AsyncClient, imis: ServerThread
) -> None:
    phone = "+14155550134"
    org = await _org(optout, phone, "23145", writeback_target="activity")
    await control.post("/faults", json={"kind": "server_error", "path": "/api/Activity", "skip": 1, "count": 1})
    await optout.inbound(org, "STOP", phone)  # GET (skipped by the fault), then the POST answers 500
    jobs = await eventually(lambda: _settled(optout, org, 1), timeout=20)
    assert [j["state"] for j in jobs] == ["done"]
    posts = (await control.get("/writes", params={"path": "/api/Activity"})).json()["writes"]
    assert [w["status"] for w in posts] == [201]  # the 500 came before the stand-in stored anything
    [activity] = await _activities(control, "23145")

    async with httpx.AsyncClient() as http:  # what a retry after a 500 that saved anyway does
        session = ImisSession(http, imis.url, "SMS_INTEGRATION", "standin-password")
        assert await record_unsubscribe(session, "23145", phone, datetime.now(UTC), "STOP") == "already_recorded"
    assert await _activities(control, "23145") == [activity]


async def test_a_21610_on_send_writes_textunsub(optout: OptoutHarness, control: httpx.AsyncClient) -> None:
    phone = "+14155550135"
    org = await _org(optout, phone, "23146", writeback_target="activity")
    sid = await optout.add_ledger_row(org, phone)
    await optout.status(org, sid, "failed", "21610", To=phone)
    jobs = await eventually(lambda: _settled(optout, org, 1), timeout=20)
    assert [(j["action"], j["state"]) for j in jobs] == [("opt_out", "done")]
    [activity] = await _activities(control, "23146")
    assert (activity["ACTIVITY_TYPE"], activity["UF_1"]) == ("TEXTUNSUB", phone)


async def test_the_preference_target_sets_the_sms_opt_in_flag(
    optout: OptoutHarness, control: httpx.AsyncClient
) -> None:
    phone = "+16045550199"
    org = await _org(optout, phone, "23147", writeback_target="preference",
                     sms_communication_type_id=SMS_COMMUNICATION_TYPE_ID)

    async def sms_flag() -> bool | None:
        party = (await control.get("/parties/23147")).json()
        for entry in party["CommunicationTypePreferences"]["$values"]:
            if entry["CommunicationTypeId"] == SMS_COMMUNICATION_TYPE_ID:
                return bool(entry["OptInFlag"])
        return None

    await optout.inbound(org, "STOP", phone)
    await eventually(lambda: _settled(optout, org, 1), timeout=20)
    assert await sms_flag() is False
    await optout.inbound(org, "START", phone)
    jobs = await eventually(lambda: _settled(optout, org, 2), timeout=20)
    assert [j["state"] for j in jobs] == ["done", "done"]
    assert await sms_flag() is True


async def test_the_panel_target_is_left_as_it_was(optout: OptoutHarness, control: httpx.AsyncClient) -> None:
    phone = "+14155550136"
    org = await _org(optout, phone, "23148", writeback_target="panel")
    await optout.inbound(org, "STOP", phone)
    await eventually(lambda: _settled(optout, org, 1), timeout=20)
    assert (await control.get("/panels/TP_SmsPreferences/23148")).json()["SmsOptOut"] is True
    assert await _activities(control, "23148") == []


async def test_a_slow_imis_never_holds_up_another_organisations_write_back(
    optout: OptoutHarness, control: httpx.AsyncClient, slow_imis: ServerThread
) -> None:
    async with httpx.AsyncClient(base_url=slow_imis.url + "/_control") as slow_control:
        await slow_control.post("/faults", json={"kind": "slow", "path": "/api/", "delay_seconds": 60, "count": 1})
        slow = await _org(optout, "+14155550137", "23150", writeback_target="activity", base_url=slow_imis.url)
        quick = await _org(optout, "+14155550138", "23151", writeback_target="activity")
        await optout.inbound(slow, "STOP", "+14155550137")
        await eventually(lambda: _fired(slow_control), timeout=20)
        await optout.inbound(quick, "STOP", "+14155550138")
        jobs = await eventually(lambda: _settled(optout, quick, 1), timeout=20)
        assert [j["state"] for j in jobs] == ["done"]
        # The slow organisation's one call is still waiting on its iMIS.
        assert await optout.fetchval("SELECT state FROM imis_outbox WHERE org_id = $1", slow.id) == "pending"
        assert await _activities(control, "23151") != []


async def _fired(control: httpx.AsyncClient) -> bool:
    faults = (await control.get("/faults")).json()["faults"]
    return bool(faults) and faults[0]["fired"] >= 1


async def test_a_preference_target_without_a_communication_type_is_refused(optout: OptoutHarness) -> None:
    org = await optout.new_org()
    with pytest.raises(asyncpg.CheckViolationError):
        await make_imis_account(optout.pool, org.id, writeback_target="preference")
    with pytest.raises(asyncpg.CheckViolationError):
        await make_imis_account(optout.pool, org.id, writeback_target="textunsub")
