"""What a run achieved, in a real browser: the funnel on the campaign page (its bars' numbers, the table
alternative, the CSV export), and the composer's "Track links" switch with the short link's length.

Screenshots go to var/test-artefacts (textpulse-funnel.png).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Page, expect

from harness import factories
from tests.browser.test_dashboard import Org, screenshot, sign_in
from tests.integration import api_harness
from tests.integration.test_run_funnel import RECIPIENTS, seed_run


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool, time_zone="America/New_York")
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff")
    return Org(made.id, admin, staff)


async def test_the_campaign_page_shows_the_runs_funnel_its_table_and_exports_it(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await factories.make_campaign(db_pool, org.id, name="Renewal drive", state="completed",
                                             track_links=True)
    run = await seed_run(db_pool, org.id, campaign, RECIPIENTS)
    await sign_in(page, org.staff, then=f"/campaigns/{campaign}")

    chart = page.get_by_role("list", name="Recipient funnel")
    await expect(chart.locator("li")).to_have_count(8)
    for step, count in (("targeted", "16"), ("excluded", "10"), ("sent", "4"), ("delivered", "3"),
                        ("failed", "2"), ("clicked", "2"), ("replied", "2"), ("opted_out", "1")):
        await expect(chart.locator(f'[data-step="{step}"]')).to_have_text(count)
    table = page.locator("#funnel-table")
    await expect(table).to_be_hidden()
    await page.get_by_text("Show the funnel as a table").click()
    await expect(table.get_by_role("row", name=re.compile("Left out: Landline"))).to_contain_text("1")
    await expect(table.get_by_role("row", name=re.compile("Failed: 30003"))).to_contain_text("1")
    await screenshot(page, "funnel")

    async with page.expect_download() as info:
        await page.get_by_role("link", name="Export recipients CSV").click()
    download = await info.value
    assert download.suggested_filename == f"run-{run}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == len(RECIPIENTS)
    assert next(r for r in rows if r["member_id"] == "ann")["reply"] == "'=cmd|' /C calc'!A0"


async def test_the_composer_tracks_links_and_shows_the_short_links_length(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.staff, then="/campaigns/new")
    await page.get_by_label("Campaign name").fill("Tracked renewal")
    long_link = "https://example.org/members/renewals/" + "annual-renewal-" * 8
    await page.get_by_label("Text message").fill(f"Renew now: {long_link}")
    await expect(page.locator("#segments")).to_have_text("2")
    await expect(page.locator("#preview-bubble")).to_contain_text(long_link)

    await page.get_by_label("Track links").check()
    length = len("http://127.0.0.1:8005/") + 12
    await expect(page.locator("#track-links-hint")).to_contain_text(f"{length}-character short link")
    await expect(page.locator("#preview-bubble")).to_have_text(
        re.compile(r"^Renew now: http://127\.0\.0\.1:8005/[A-Za-z0-9_-]{12}$"))
    await expect(page.locator("#segments")).to_have_text("1")
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    saved = await db_pool.fetchval("SELECT track_links FROM campaigns WHERE org_id = $1 AND name = $2", org.id,
                                   "Tracked renewal")
    assert saved is True
