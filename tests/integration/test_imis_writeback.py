"""STOP and START written back to iMIS through the outbox, against the iMIS stand-in over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from harness.factories import make_imis_account
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.serving import ServerThread
from tests.conftest import eventually
from tests.integration.optout_harness import OptoutHarness, Org, running_optout

pytestmark = pytest.mark.timeout(60)

PANEL = "TP_SmsPreferences"
SHARED_PHONE = "+14155550139"  # Jun Lee (23156) and Mei Lee (23157) share it in the stand-in's data


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
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
        await client.delete("/faults")


async def _org_with_imis(optout: OptoutHarness, *, base_url: str | None = None,
                         password: str = "standin-password") -> Org:
    org = await optout.new_org()
    await make_imis_account(optout.pool, org.id, base_url=base_url, password=password)
    return org


async def _index(optout: OptoutHarness, org: Org, phone: str, *members: str, days_ago: int = 0) -> None:
    async with optout.pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO member_phone_index (org_id, phone, member_id, last_run_id, last_seen_at) "
            "VALUES ($1, $2, $3, $4, now() - make_interval(days => $5))",
            [(org.id, phone, m, org.run_id, days_ago) for m in members])


async def _jobs(optout: OptoutHarness, org: Org) -> list[dict[str, Any]]:
    rows = await optout.fetch("SELECT member_id, action, state, attempts, last_error, source_text FROM imis_outbox "
                              "WHERE org_id = $1 ORDER BY id", org.id)
    return [dict(r) for r in rows]


async def _all_settled(optout: OptoutHarness, org: Org) -> list[dict[str, Any]] | None:
    jobs = await _jobs(optout, org)
    return jobs if jobs and all(j["state"] != "pending" for j in jobs) else None


async def _panel(control: httpx.AsyncClient, member: str) -> dict[str, Any]:
    response = await control.get(f"/panels/{PANEL}/{member}")
    return response.json() if response.status_code == 200 else {}


async def _writes(control: httpx.AsyncClient, member: str) -> list[tuple[str, int]]:
    writes = (await control.get("/writes", params={"path": f"/api/{PANEL}"})).json()["writes"]
    return [(w["method"], w["status"]) for w in writes
            if w["path"].endswith(f"/{member}") or (w["method"] == "POST" and _row_id(w["body"]) == member)]


def _row_id(body: Any) -> str | None:
    try:
        return str(body["Identity"]["IdentityElements"]["$values"][0])
    except (KeyError, IndexError, TypeError):
        return None


async def test_stop_then_start_reach_every_member_with_that_number(
    optout: OptoutHarness, control: httpx.AsyncClient
) -> None:
    org = await _org_with_imis(optout)
    await _index(optout, org, SHARED_PHONE, "23156", "23157")
    await _index(optout, org, SHARED_PHONE, "23158", days_ago=500)  # outside the window: left alone

    await optout.inbound(org, "STOP", SHARED_PHONE)
    jobs = await eventually(lambda: _all_settled(optout, org), timeout=10)
    assert [(j["member_id"], j["action"], j["state"], j["last_error"]) for j in jobs] == [
        ("23156", "opt_out", "done", None), ("23157", "opt_out", "done", None)]
    for member in ("23156", "23157"):
        row = await _panel(control, member)
        assert row["SmsOptOut"] is True and row["SmsOptOutSource"] == f"STOP from {SHARED_PHONE}"
        assert len(row["SmsOptOutDate"]) == 19  # iMIS's zone-less local time
        assert await _writes(control, member) == [("PUT", 404), ("POST", 201)]  # no row yet: PUT, then POST
    assert await _panel(control, "23158") == {}

    await optout.inbound(org, "START", SHARED_PHONE)
    await eventually(lambda: optout.fetchval(
        "SELECT count(*) = 4 AND bool_and(state = 'done') FROM imis_outbox WHERE org_id = $1", org.id), timeout=10)
    for member in ("23156", "23157"):
        row = await _panel(control, member)
        assert row["SmsOptOut"] is False and "SmsOptInDate" in row
        assert await _writes(control, member) == [("PUT", 404), ("POST", 201), ("PUT", 200)]


async def test_server_errors_are_retried_until_imis_accepts(optout: OptoutHarness, control: httpx.AsyncClient) -> None:
    org = await _org_with_imis(optout)
    await _index(optout, org, "+14155550134", "23145")
    await control.post("/faults", json={"kind": "server_error", "path": f"/api/{PANEL}", "count": 2, "body": "html"})
    await optout.inbound(org, "STOP", "+14155550134")
    jobs = await eventually(lambda: _all_settled(optout, org), timeout=10)
    assert [(j["state"], j["attempts"], j["last_error"]) for j in jobs] == [("done", 3, None)]
    assert (await _panel(control, "23145"))["SmsOptOut"] is True


async def test_a_revoked_token_is_renewed_and_the_call_retried(
    optout: OptoutHarness, control: httpx.AsyncClient
) -> None:
    org = await _org_with_imis(optout)
    await _index(optout, org, "+14155550135", "23146")
    await control.post("/faults", json={"kind": "unauthorized", "path": f"/api/{PANEL}", "count": 1})
    issued = (await control.get("/stats")).json()["tokens_issued"]
    await optout.inbound(org, "STOP", "+14155550135")
    jobs = await eventually(lambda: _all_settled(optout, org), timeout=10)
    assert [(j["state"], j["attempts"]) for j in jobs] == [("done", 1)]
    assert (await control.get("/stats")).json()["tokens_issued"] == issued + 1


async def test_imis_down_leaves_the_job_pending_with_its_error(optout: OptoutHarness) -> None:
    org = await _org_with_imis(optout, base_url="http://127.0.0.1:9")  # nothing listens there
    await _index(optout, org, "+14155550136", "23148")
    await optout.inbound(org, "STOP", "+14155550136")

    async def retrying() -> list[dict[str, Any]] | None:
        jobs = await _jobs(optout, org)
        return jobs if jobs and jobs[0]["attempts"] >= 2 else None

    jobs = await eventually(retrying, timeout=10)
    assert jobs[0]["state"] == "pending" and jobs[0]["last_error"].startswith("imis_unavailable")
    assert await optout.scopes_suppressed(org, "+14155550136") == {"", org.sender}  # never waits for iMIS


@pytest.mark.parametrize(
    ("password", "member", "error"),
    [("wrong-password", "23147", "imis_credentials_rejected"), ("standin-password", "99999", "imis_member_missing")],
    ids=["credentials refused", "no such contact"],
)
async def test_permanent_refusals_fail_the_job_visibly(
    optout: OptoutHarness, password: str, member: str, error: str
) -> None:
    org = await _org_with_imis(optout, password=password)
    await _index(optout, org, "+16045550199", member)
    await optout.inbound(org, "STOP", "+16045550199")
    jobs = await eventually(lambda: _all_settled(optout, org), timeout=10)
    assert [(j["state"], j["attempts"]) for j in jobs] == [("failed", 1)]
    assert jobs[0]["last_error"].startswith(error)


async def test_no_imis_account_means_no_jobs(optout: OptoutHarness) -> None:
    org = await optout.new_org()
    await _index(optout, org, "+14155550137", "23150")
    await optout.inbound(org, "STOP", "+14155550137")
    await eventually(lambda: optout.scopes_suppressed(org, "+14155550137"), timeout=5)
    await eventually(lambda: optout.settled(org), timeout=5)
    assert await _jobs(optout, org) == []
