"""The send plan in the audience preview: an audience in four time zones, previewed for a start at 9:30 pm
Eastern, with the organisation's marketing cap and one member already texted this week."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.integration import api_harness
from tests.integration.api_harness import Caller, client_for, problem, with_api_key

CSV = "/api/v1/audiences/csv"
PREVIEW = "/api/v1/audiences/preview"
START = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)  # Thursday 3 December, 9:30 pm Eastern, 8:30 pm Central
# Boston (Eastern, 9:30 pm: closed), Miami (Florida), Tulsa (Oklahoma: 8 pm), Chicago (Central, open until
# 9 pm), Los Angeles (Pacific, 6:30 pm); the first Los Angeles member already had a marketing text.
AREAS = {"617": 4, "305": 3, "918": 5, "312": 2, "213": 6}
CAPPED = "+12135550100"


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app:
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
async def caller(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await with_api_key(db_pool, client, org.id)


@pytest.fixture
async def upload_id(caller: Caller, db_pool: asyncpg.Pool) -> str:
    lines = ["ID,Mobile"] + [f"{area}{n},{area}55501{n:02d}" for area, count in AREAS.items() for n in range(count)]
    response = await caller.client.post(CSV, files={"file": ("members.csv", "\n".join(lines).encode(), "text/csv")},
                                        headers=caller.headers)
    assert response.status_code == 201, response.text
    await db_pool.execute("UPDATE organisations SET marketing_cap_texts = 1, marketing_cap_days = 7 WHERE id = $1",
                          caller.org_id)
    campaign = await db_pool.fetchval("INSERT INTO campaigns (org_id, name, state) VALUES ($1, 'Gala', 'completed') "
                                      "RETURNING id", caller.org_id)
    run = await db_pool.fetchval("INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state) "
                                 "VALUES ($1, $2, $3, 'completed') RETURNING id", caller.org_id, campaign,
                                 START - timedelta(days=2))
    await db_pool.execute(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_at,
                                    sent_at, updated_at)
           VALUES ($1, $2, $3, '+18885550100', $4, 1, 'sent', $5, $5, $5)""",
        run, uuid.uuid4(), caller.org_id, CAPPED, START - timedelta(days=2))
    return str(response.json()["id"])


async def plan(caller: Caller, upload_id: str, **fields: Any) -> dict[str, Any]:
    response = await caller.call("POST", PREVIEW, {"audience": {"kind": "csv", "upload_id": upload_id},
                                                   "body": "Gala tickets are on sale.",
                                                   "start_at": START.isoformat(), **fields})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["plan"]
    return found


async def test_the_plan_says_who_is_held_until_when_before_launch(caller: Caller, upload_id: str) -> None:
    found = await plan(caller, upload_id, hold_limit_s=12 * 3600)
    assert (found["sendable_now"], found["outside_window"], found["frequency_capped"]) == (7, 0, 1)
    assert [(h["until"], h["time_zone"], h["count"]) for h in found["held"]] == [
        ("2026-12-04T13:00:00Z", "America/New_York", 7), ("2026-12-04T14:00:00Z", "America/Chicago", 5)]
    assert found["sentences"] == ["7 members will be held until 8 am Eastern tomorrow.",
                                  "5 members will be held until 8 am Central tomorrow.",
                                  "1 member over a frequency cap will not be texted."]
    # The Tulsa members, the last to open, go at 3 segments a second: 5 texts take 1.67 s.
    assert datetime.fromisoformat(found["finishes_at"]) == datetime(2026, 12, 4, 14, 0, 1, 666667, tzinfo=UTC)


async def test_a_shorter_hold_limit_leaves_the_later_window_outside_it(caller: Caller, upload_id: str) -> None:
    found = await plan(caller, upload_id, hold_limit_s=11 * 3600)  # ends 13:30 UTC: Tulsa opens at 14:00
    assert (found["sendable_now"], found["outside_window"], found["frequency_capped"]) == (7, 5, 1)
    assert [h["count"] for h in found["held"]] == [7]
    assert "5 members cannot be texted before the campaign's hold limit" in found["sentences"][1]


async def test_a_transactional_campaign_skips_the_marketing_cap(caller: Caller, upload_id: str) -> None:
    found = await plan(caller, upload_id, transactional=True)
    assert (found["sendable_now"], found["frequency_capped"]) == (8, 0)


@pytest.mark.parametrize(("change", "field"), [({"start_at": "2026-12-04T02:30:00"}, "start_at"),
                                               ({"hold_limit_s": -1}, "hold_limit_s"),
                                               ({"hold_limit_s": 700_000}, "hold_limit_s")])
async def test_a_start_without_a_zone_or_a_hold_limit_out_of_range_is_refused(
    caller: Caller, upload_id: str, change: dict[str, Any], field: str
) -> None:
    response = await caller.call("POST", PREVIEW, {"audience": {"kind": "csv", "upload_id": upload_id}, **change})
    assert [e["field"] for e in problem(response, 422, "request_invalid")["errors"]] == [field]


async def test_the_plan_places_members_by_the_csvs_state_column(caller: Caller) -> None:
    # Los Angeles numbers at 6:30 pm Pacific: one lives in Florida (held until the panhandle's 8 am Central),
    # one typed a state that is none ("Calif."), one in California, one in British Columbia (no US state).
    lines = ["ID,Mobile,State", "1,2135550201,FL", "2,2135550202,Calif.", "3,2135550203,ca", "4,2135550204,BC"]
    uploaded = await caller.client.post(CSV, files={"file": ("moved.csv", "\n".join(lines).encode(), "text/csv")},
                                        headers=caller.headers)
    assert uploaded.status_code == 201, uploaded.text
    found = await plan(caller, str(uploaded.json()["id"]), hold_limit_s=12 * 3600)
    assert (found["sendable_now"], found["outside_window"], found["frequency_capped"]) == (3, 0, 0)
    assert [(h["until"], h["time_zone"], h["count"]) for h in found["held"]] == [
        ("2026-12-04T14:00:00Z", "America/Chicago", 1)]
    assert found["sentences"] == ["1 member will be held until 8 am Central tomorrow."]
