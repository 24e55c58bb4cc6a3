"""A run's figures are the same wherever they are shown: the runs API, the campaign page and the alert
e-mail all read run_figures (migration 0027): the usage rollup, with the ledger's counters where the
rollup has nothing yet."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from html import unescape

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


async def _paused_run(pool: asyncpg.Pool, org_id: uuid.UUID, campaign: uuid.UUID, *, settled_messages: int,
                      settled_estimate: str, settled_price: str) -> uuid.UUID:
    """A run the dispatcher paused (failure threshold) with the dispatcher's counters (refreshed from the
    ledger now and then) and the usage rollup, which has counted deliveries, a late failure and the money,
    Twilio's prices for ``settled_messages`` of its 200 messages included; nothing writes
    campaign_runs.delivered or .cost."""
    reason = run_reasons.columns(run_reasons.failure_threshold(25, 200))
    run: uuid.UUID = await pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, state_reason, state_reason_code,
                                      state_reason_detail, started_at, targeted, excluded, sent, failed, segments,
                                      planned_segments, estimated_cost)
           VALUES ($1, $2, now(), 'paused', $3, $4, $5::jsonb, now(), 500, 4, 180, 20, 360, 1000, 8.3)
           RETURNING id""", org_id, campaign, reason["reason"], reason["reason_code"], reason["reason_detail"])
    await pool.execute(
        """INSERT INTO usage_runs (run_id, org_id, campaign_id, messages, segments, delivered, undelivered, failed,
                                   opt_outs, segment_cost, failed_fees, settled_messages, settled_estimate,
                                   settled_price)
           VALUES ($1, $2, $3, 200, 400, 150, 5, 25, 2, 3.3200, 0.0250, $4, $5::numeric, $6::numeric)""",
        run, org_id, campaign, settled_messages, settled_estimate, settled_price)
    return run


async def _alert(pool: asyncpg.Pool, run: uuid.UUID) -> tuple[str, str]:
    """The text and HTML parts of the alert the watcher raises for ``run``."""
    await AlertWatcher(pool, base_url="https://app.textpulse.test", tuning=WatcherTuning(batch=1000)).check_runs()
    row = await pool.fetchrow(
        "SELECT body_text, body_html FROM alerts WHERE run_id = $1 AND kind = 'failure_threshold'", run)
    assert row is not None, "no alert was raised for the paused run"
    return row["body_text"], row["body_html"]


def _figure(text: str, label: str) -> str:
    """The value the alert's text gives ``label`` in its figures."""
    found = re.search(rf"^\s*{re.escape(label)}:\s+(.*?)\s*$", text, re.M)
    assert found is not None, (label, text)
    return found.group(1)


async def test_a_live_runs_deliveries_and_costs_read_the_same_in_the_api_on_the_page_and_in_an_alert(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await _campaign(db_pool, staff.org_id, "paused")
    # Twilio has priced 150 of the 200 messages: $2.4000 against the $2.4900 estimated for them.
    run = await _paused_run(db_pool, staff.org_id, campaign, settled_messages=150, settled_estimate="2.49",
                            settled_price="2.40")

    [api] = (await staff.call("GET", f"/api/v1/campaigns/{campaign}/runs")).json()
    assert (api["targeted"], api["excluded"], api["sent"], api["delivered"], api["failed"], api["segments"]) == (
        500, 4, 200, 150, 25, 400)
    assert Decimal(api["cost"]) == Decimal("3.345") and Decimal(api["estimated_cost"]) == Decimal("8.3")
    assert Decimal(api["actual_cost"]) == Decimal("3.255") and api["cost_provisional"] is True
    assert (api["undelivered"], api["opt_outs"]) == (5, 2)

    page = (await staff.call("GET", f"/campaigns/{campaign}", **HTML)).text
    assert _page_row(page, run) == ["500", "4", "200", "150", "25", "2", "400", "$3.3450",
                                    "$3.2550 provisional: Twilio has not priced every text yet", "$8.3000"]
    headers = [unescape(h) for h in re.findall(r'<th scope="col" class="num">(.*?)</th>', page)]
    assert {"Cost (estimated)", "Cost (Twilio's price)"} <= set(headers)  # the e-mail's labels

    text, html = await _alert(db_pool, run)
    for label, value in (("Recipients", "500"), ("Sent", "200"), ("Delivered", "150"), ("Failed", "25"),
                         ("Segments sent", "400"), ("Cost (estimated)", "$3.3450"),
                         ("Cost (Twilio's price)", "$3.2550 (provisional: Twilio has not priced every text yet)")):
        assert _figure(text, label) == value
    plain_html = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert "Cost (estimated) $3.3450" in plain_html
    assert "Cost (Twilio's price) $3.2550 (provisional: Twilio has not priced every text yet)" in plain_html


async def test_an_alert_for_a_run_twilio_has_priced_throughout_shows_its_price_without_a_proviso(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await _campaign(db_pool, staff.org_id, "paused")
    run = await _paused_run(db_pool, staff.org_id, campaign, settled_messages=200, settled_estimate="3.345",
                            settled_price="3.1")
    [api] = (await staff.call("GET", f"/api/v1/campaigns/{campaign}/runs")).json()
    assert Decimal(api["actual_cost"]) == Decimal("3.1") and api["cost_provisional"] is False
    text, html = await _alert(db_pool, run)
    assert (_figure(text, "Cost (estimated)"), _figure(text, "Cost (Twilio's price)")) == ("$3.3450", "$3.1000")
    assert "provisional" not in text and "provisional" not in html


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
