"""Lists that end and pages that keep up, in a real browser: the recipients table of a 436-recipient run
pages and searches; Home's figures follow the database without a reload while a campaign sends.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import Page, expect

from services.api import pages
from tests.browser.test_dashboard import TZ, Org, add_campaign, sign_in
from tests.integration import api_harness

RECIPIENTS = 436


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool, time_zone=TZ)
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin", name="Dana Whitfield")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff", name="Sam Ortiz")
    return Org(made.id, admin, staff)


async def _run_with_recipients(pool: asyncpg.Pool, org_id: uuid.UUID, campaign_id: uuid.UUID) -> uuid.UUID:
    """A completed run whose snapshot (inserted directly) has RECIPIENTS members, the last six left out."""
    run_id = await pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted, excluded, sent)
           VALUES ($1, $2, now() - interval '1 hour', 'completed', $3, 6, $3) RETURNING id""",
        org_id, campaign_id, RECIPIENTS - 6)
    names = ["Ann", "Bo", "Cy", "Dee"]
    rows = []
    for i in range(RECIPIENTS):
        queued = i < RECIPIENTS - 6
        first = "Quinn" if i == 250 else names[i % 4]
        rows.append((run_id, i, uuid.uuid4(), org_id, str(20_000 + i), f"+1617555{i:04d}",
                     "Hello" if queued else None, 1 if queued else 0, "queued" if queued else "excluded",
                     None if queued else "opted_out", json.dumps({"first_name": first})))
    await pool.executemany(
        """INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, segments, status,
                                       reason, merge_values)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)""", rows)
    return run_id


async def test_the_recipients_table_pages_and_searches_a_run_of_436(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await add_campaign(db_pool, org.id, "Annual meeting", "completed")
    await _run_with_recipients(db_pool, org.id, campaign)
    await sign_in(page, org.staff, then=f"/campaigns/{campaign}")
    rows = page.locator("#recipients tbody tr")
    showing = page.locator("#recipients-showing")
    pages = page.get_by_role("navigation", name="Recipient pages")

    await expect(showing).to_have_text("Showing 1–100 of 436")
    await expect(rows).to_have_count(100)
    await expect(pages.get_by_role("link", name="Previous")).to_have_count(0)
    await pages.get_by_role("link", name="Next").click()
    await expect(showing).to_have_text("Showing 101–200 of 436")
    await expect(rows.first).to_contain_text("20100")
    await pages.get_by_role("link", name="Previous").click()
    await expect(showing).to_have_text("Showing 1–100 of 436")
    for _ in range(4):
        await pages.get_by_role("link", name="Next").click()
    await expect(showing).to_have_text("Showing 401–436 of 436")
    await expect(rows).to_have_count(36)
    await expect(rows.last).to_contain_text("Left out: opted out")
    await expect(pages.get_by_role("link", name="Next")).to_have_count(0)

    search = page.get_by_label("Search recipients")
    for typed in ["(617) 555-0250", "617-555-0250", "+1 617 555 0250", "Quinn", "20250"]:
        await search.fill(typed)
        await page.get_by_role("button", name="Search").click()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("+16175550250")
        await expect(showing).to_have_text(f"Showing 1–1 of 1 matching “{typed}”")
    await search.fill("Ann")
    await page.get_by_role("button", name="Search").click()
    await expect(showing).to_have_text("Showing 1–100 of 109 matching “Ann”")  # every fourth member
    await pages.get_by_role("link", name="Next").click()
    await expect(showing).to_have_text("Showing 101–109 of 109 matching “Ann”")


async def test_homes_figures_follow_the_database_while_a_campaign_sends(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    today = datetime.now(ZoneInfo(TZ)).date()
    await db_pool.execute(
        """INSERT INTO usage_daily (org_id, day, messages, segments, delivered, failed, segment_cost)
           VALUES ($1, $2, 100, 200, 90, 2, 1.66)""", org.id, today)
    campaign = await add_campaign(db_pool, org.id, "Storm closure", "sending")
    started = datetime.now(UTC) - timedelta(minutes=2)
    await db_pool.execute(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent)
           VALUES ($1, $2, $3, 'sending', $3, 400, 100)""", org.id, campaign, started)
    await sign_in(page, org.staff)
    await expect(page.locator("#stat-today .value")).to_have_text("200")
    await expect(page.locator("#state-sending .count")).to_have_text("1")
    await page.evaluate("window.notReloaded = true")

    await db_pool.execute("UPDATE usage_daily SET messages = 700, segments = 1400, segment_cost = 11.62 "
                          "WHERE org_id = $1 AND day = $2", org.id, today)
    await add_campaign(db_pool, org.id, "Next newsletter", "draft")
    await expect(page.locator("#stat-today .value")).to_have_text("1,400", timeout=30_000)
    await expect(page.locator("#stat-today .sub")).to_have_text("700 messages")
    await expect(page.locator("#stat-cost .value")).to_have_text("$11.62")
    await expect(page.locator("#state-draft .count")).to_have_text("1")
    assert await page.evaluate("window.notReloaded === true")
    # What a script adds reads as what the page was rendered with (pages.py's local filter).
    moment = datetime(2026, 9, 2, 13, 5, tzinfo=UTC)
    written = await page.evaluate(
        "([iso, tz]) => import('/static/app.js').then((app) => app.formatWhen(iso, tz))", [moment.isoformat(), TZ])
    assert written == pages.ENV.filters["local"](moment, TZ) == "2 Sep 2026, 09:05"


async def test_the_campaign_list_follows_a_campaign_that_finishes_sending(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await add_campaign(db_pool, org.id, "Storm closure", "sending")
    await sign_in(page, org.staff, then="/campaigns")
    row = page.get_by_role("row", name=re.compile("Storm closure"))
    await expect(row).to_contain_text("Sending")
    await page.evaluate("window.notReloaded = true")
    await db_pool.execute("UPDATE campaigns SET state = 'completed', updated_at = now() WHERE id = $1", campaign)
    await expect(row).to_contain_text("Completed", timeout=30_000)
    await expect(page.get_by_role("link", name=re.compile("^Completed"))).to_contain_text("1")
    assert await page.evaluate("window.notReloaded === true")


async def test_a_new_api_key_appears_in_the_list_without_a_reload(page: Page, org: Org) -> None:
    await sign_in(page, org.admin, then="/settings")
    await page.evaluate("window.notReloaded = true")
    await page.get_by_label("New key's name").fill("iMIS sync")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.locator("#new-key-value")).to_have_text(re.compile(r"^tpk_"))
    keys = page.get_by_role("table", name="API keys")
    await expect(keys.get_by_role("row", name=re.compile("iMIS sync"))).to_have_count(1)
    await expect(keys.get_by_role("button", name="Revoke")).to_have_count(1)
    assert await page.evaluate("window.notReloaded === true")
