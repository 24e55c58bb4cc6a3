"""A run's figures are the same wherever they are shown: the runs API, the campaign page and the alert
e-mail all read run_figures (migration 0027): the usage rollup, with the ledger's counters where the
rollup has nothing yet."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx
import pytest

from libs.common import run_reasons
from services.usage.watcher import AlertWatcher, WatcherTuning
from tests.integration import api_harness
from tests.integration.api_harness import Caller, signed_in

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@pytest.fixture
async def staff(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await signed_in(db_pool, client, org.id)


async def _campaign(pool: asyncpg.Pool, org_id: uuid.UUID, state: str) -> uuid.UUID:
    return await pool.fetchval("INSERT INTO campaigns (org_id, name, state) VALUES ($1, 'Renewals', $2) RETURNING id",
                               org_id, state)


def _page_row(page: str, run_id: uuid.UUID) -> list[str]:
    """The run's row on the campaign page: recipients, excluded, sent, delivered, failed, opt-outs,
    segments, estimated cost, Twilio's price (with "provisional" while it is), planned cost."""
    row = re.search(rf'\?run={run_id}#recipients-title".*?</tr>', page, re.S)
    assert row is not None, "the run's row is missing"
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(0), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


async def test_a_live_runs_deliveries_and_cost_read_the_same_in_the_api_on_the_page_and_in_an_alert(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await _campaign(db_pool, staff.org_id, "paused")
    # The dispatcher's counters (refreshed from the ledger now and then) and the usage rollup, which has
    # counted deliveries, a late failure and the money; nothing writes campaign_runs.delivered or .cost.
    reason = run_reasons.columns(run_reasons.failure_threshold(25, 200))
    run = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, state_reason, state_reason_code,
                                      state_reason_detail, started_at, targeted, excluded, sent, failed, segments,
                                      planned_segments, estimated_cost)
           VALUES ($1, $2, now(), 'paused', $3, $4, $5::jsonb, now(), 500, 4, 180, 20, 360, 1000, 8.3)
           RETURNING id""", staff.org_id, campaign, reason["reason"], reason["reason_code"], reason["reason_detail"])
    await db_pool.execute(
        """INSERT INTO usage_runs (run_id, org_id, campaign_id, messages, segments, delivered, undelivered, failed,
                                   opt_outs, segment_cost, failed_fees)
           VALUES ($1, $2, $3, 200, 400, 150, 5, 25, 2, 3.3200, 0.0250)""", run, staff.org_id, campaign)

    [api] = (await staff.call("GET", f"/api/v1/campaigns/{campaign}/runs")).json()
    assert (api["targeted"], api["excluded"], api["sent"], api["delivered"], api["failed"], api["segments"]) == (
        500, 4, 200, 150, 25, 400)
    assert Decimal(api["cost"]) == Decimal("3.345") and Decimal(api["estimated_cost"]) == Decimal("8.3")
    assert (api["undelivered"], api["opt_outs"]) == (5, 2)

    page = (await staff.call("GET", f"/campaigns/{campaign}", **HTML)).text
    assert _page_row(page, run) == ["500", "4", "200", "150", "25", "2", "400", "$3.3450",
                                    "$3.3450 provisional: Twilio has not priced every text yet", "$8.3000"]

    await AlertWatcher(db_pool, base_url="https://app.textpulse.test", tuning=WatcherTuning(batch=1000)).check_runs()
    body = await db_pool.fetchval("SELECT body_text FROM alerts WHERE run_id = $1 AND kind = 'failure_threshold'", run)
    assert body is not None, "no alert was raised for the paused run"
    for label, value in (("Recipients", "500"), ("Sent", "200"), ("Delivered", "150"), ("Failed", "25"),
                         ("Segments sent", "400"), ("Cost", "$3.3450")):
        assert re.search(rf"^\s*{re.escape(label)}:?\s+{re.escape(value)}\s*$", body, re.M), (label, value, body)


async def test_a_run_the_usage_service_has_not_counted_yet_shows_the_ledgers_counters(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await _campaign(db_pool, staff.org_id, "sending")
    run = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent, failed,
                                      segments)
           VALUES ($1, $2, now(), 'sending', now(), 50, 12, 1, 24) RETURNING id""", staff.org_id, campaign)
    [api] = (await staff.call("GET", f"/api/v1/campaigns/{campaign}/runs")).json()
    assert (api["sent"], api["delivered"], api["failed"], api["segments"], Decimal(api["cost"])) == (12, 0, 1, 24, 0)
    assert api["opt_outs"] is None
    page = (await staff.call("GET", f"/campaigns/{campaign}", **HTML)).text
    assert _page_row(page, run)[2:5] == ["12", "0", "1"]
