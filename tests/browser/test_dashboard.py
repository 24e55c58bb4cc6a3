"""The dashboard in a real browser: sign in, Home's counts, the composer's live counter and GSM-7 fix,
scheduling, Settings and its 30,000-segment warning, and a staff user kept out of Settings.

Screenshots of Home, the composer and Settings are written to var/test-artefacts (textpulse-*.png).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import Page, expect

from harness.factories import PASSWORD
from tests.browser.conftest import SCREENSHOTS
from tests.integration import api_harness

TZ = "America/New_York"


@dataclass
class Org:
    id: uuid.UUID
    admin: str
    staff: str


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool, time_zone=TZ)
    await db_pool.execute("UPDATE organisations SET name = 'Harbor State Nurses Association' WHERE id = $1", made.id)
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin", name="Dana Whitfield")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff", name="Sam Ortiz")
    return Org(made.id, admin, staff)


async def sign_in(page: Page, email: str, then: str = "/") -> None:
    await page.goto(f"/sign-in?next={then}")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(re.escape(then) + r"$"))


async def screenshot(page: Page, name: str) -> None:
    """A full-page picture from the top (a sticky header would otherwise be drawn mid-page)."""
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / f"textpulse-{name}.png"), full_page=True)


# Home's Chart.js instance as drawn: its version, labels, plot width and each dataset's values by label.
USAGE_CHART = """() => {
  const chart = Chart.getChart(document.getElementById("usage-chart"));
  return { version: Chart.version, labels: chart.data.labels.length, width: chart.chartArea.width,
           data: Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data])) };
}"""


async def add_campaign(pool: asyncpg.Pool, org_id: uuid.UUID, name: str, state: str, **extra: object) -> uuid.UUID:
    schedule = extra.get("schedule", {"kind": "none"})
    return await pool.fetchval(
        """INSERT INTO campaigns (org_id, name, body, audience, state, schedule, next_occurrence_at)
           VALUES ($1, $2, 'Hello members', '{"kind": "iqa", "query": "$/Members"}', $3, $4::jsonb, $5)
           RETURNING id""",
        org_id, name, state, json.dumps(schedule), extra.get("next_occurrence_at"))


async def test_signing_in_shows_home_with_the_organisations_counts(page: Page, org: Org, db_pool: asyncpg.Pool) -> None:
    for i in range(2):
        await add_campaign(db_pool, org.id, f"Draft {i}", "draft")
    soon = datetime.now(UTC) + timedelta(days=3)
    await add_campaign(db_pool, org.id, "Renewal reminder", "scheduled", next_occurrence_at=soon,
                       schedule={"kind": "at", "at": soon.astimezone(ZoneInfo(TZ)).replace(tzinfo=None).isoformat(),
                                 "time_zone": TZ})
    await add_campaign(db_pool, org.id, "Board election results", "completed")
    await db_pool.execute("INSERT INTO subscriptions (org_id, plan, monthly_segment_allowance) VALUES ($1, $2, $3)",
                          org.id, "Association Standard", 50_000)
    today = datetime.now(ZoneInfo(TZ)).date()
    for days_ago, segments, failed in [(0, 1_240, 6), (3, 2_410, 11), (9, 1_180, 3), (17, 3_020, 14)]:
        await db_pool.execute(
            """INSERT INTO usage_daily (org_id, day, messages, segments, delivered, failed, segment_cost, failed_fees)
               VALUES ($1, $2, $3::int, $4::int, $3::int - $5::int, $5, $4::int * 0.0083, $5::int * 0.001)""",
            org.id, today - timedelta(days=days_ago), segments // 2, segments, failed)
    run = await add_campaign(db_pool, org.id, "Gala night", "sending")
    await _sending_run(db_pool, org.id, run)

    await sign_in(page, org.admin)
    await expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible()
    await expect(page.locator("#state-draft .count")).to_have_text("2")
    await expect(page.locator("#state-scheduled .count")).to_have_text("1")
    await expect(page.locator("#state-completed .count")).to_have_text("1")
    await expect(page.locator("#state-sending .count")).to_have_text("1")
    await expect(page.locator("#stat-today .value")).to_have_text("1,240")
    await expect(page.locator("#stat-plan")).to_contain_text("Association Standard")
    await expect(page.locator(".sending-item")).to_contain_text("Gala night")
    await expect(page.locator(".sending-item")).to_contain_text("600 of 1,500 sent")
    chart = page.get_by_role("img", name=re.compile("Usage, last 30 days"))
    await expect(chart).to_be_visible()
    await expect(chart).to_have_js_property("tagName", "CANVAS")
    drawn = await page.evaluate(USAGE_CHART)
    assert drawn["version"].startswith("4.") and drawn["labels"] == 30 and drawn["width"] > 0
    segments, failed = drawn["data"]["Segments"], drawn["data"]["Failed messages"]
    assert len(segments) == 30 and len(failed) == 30
    assert [segments[-1 - d] for d in (0, 3, 9, 17)] == [1_240, 2_410, 1_180, 3_020] and sum(segments) == 7_850
    assert [failed[-1 - d] for d in (0, 3, 9, 17)] == [6, 11, 3, 14] and failed.count(None) == 26
    await screenshot(page, "home")
    # The text alternative: every day's figures in a table, behind a disclosure.
    await page.get_by_text("Show the figures as a table").click()
    await expect(page.get_by_role("table", name="Usage per day, last 30 days").locator("tbody tr")).to_have_count(30)

    await page.locator("#state-draft").click()
    await expect(page.get_by_role("link", name="Draft 0")).to_be_visible()
    await expect(page.get_by_role("link", name="Board election results")).to_have_count(0)


async def _sending_run(pool: asyncpg.Pool, org_id: uuid.UUID, campaign_id: uuid.UUID) -> None:
    started = datetime.now(UTC) - timedelta(minutes=4)
    run_id = await pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent)
           VALUES ($1, $2, $3, 'sending', $3, 1500, 600) RETURNING id""", org_id, campaign_id, started)
    await pool.executemany(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, updated_at)
           VALUES ($1, $2, $3, '+18885550100', '+14155550100', 1, 'sent', now() - interval '10 seconds')""",
        [(run_id, uuid.uuid4(), org_id) for _ in range(120)])


async def test_the_composer_counts_live_fixes_a_curly_quote_and_schedules(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.staff, then="/campaigns/new")
    await page.get_by_label("Campaign name").fill("Spring conference")
    body = page.get_by_label("Text message")
    badge = page.locator("#encoding")
    await body.fill("Hi {{first_name|there}}, the spring conference opens Friday at 9am. Book at example.org/spring")
    await expect(badge).to_have_text("GSM-7")
    await expect(page.locator("#segments")).to_have_text("1")
    await expect(page.locator("#preview-bubble")).to_contain_text("Hi Alex, the spring conference")

    await body.press("End")
    await body.type(" – we’re excited!")
    await expect(badge).to_have_text("UCS-2 (Unicode)")
    await expect(page.locator("#counter-status")).to_contain_text("UCS-2, 2 segments")
    await expect(page.locator("#ucs-list")).to_contain_text("right single quotation mark")
    await page.get_by_label("Expected recipients").fill("1200")
    await expect(page.locator("#est-segments")).to_have_text("2,400")
    await screenshot(page, "composer")

    await page.get_by_role("button", name="Replace them with GSM-7 characters").click()
    await expect(badge).to_have_text("GSM-7")
    await expect(body).to_have_value(re.compile("- we're excited!$"))
    await expect(page.locator("#ucs-alert")).to_be_hidden()
    await expect(page.locator("#est-segments")).to_have_text("1,200")

    # An emoji has no GSM-7 equivalent: the counter says so and offers no fix.
    await body.press("End")
    await body.type(" 🎉")
    await expect(badge).to_have_text("UCS-2 (Unicode)")
    await expect(page.locator("#ucs-list")).to_contain_text("has no GSM-7 equivalent")
    await expect(page.get_by_role("button", name="Replace them with GSM-7 characters")).to_be_hidden()
    await body.press("Backspace")  # the emoji, one character however many code units
    await body.press("Backspace")
    await expect(badge).to_have_text("GSM-7")

    await page.get_by_label("IQA query path").fill("$/Textpulse/SMS Audience")
    await page.get_by_text("At a set time").click()
    when = (datetime.now(ZoneInfo(TZ)) + timedelta(days=5)).replace(hour=9, minute=30)
    await page.get_by_label("Date and time").fill(when.strftime("%Y-%m-%dT%H:%M"))
    await expect(page.locator("#occurrences li")).to_have_count(1)
    await expect(page.locator("#occurrences")).to_contain_text("09:30")
    await page.get_by_role("button", name="Schedule").click()
    dialog = page.get_by_role("dialog", name="Schedule this campaign?")
    await expect(dialog).to_contain_text("Audience: iMIS query $/Textpulse/SMS Audience with no parameters.")
    await dialog.get_by_role("button", name="Schedule").click()

    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    await expect(page.get_by_role("heading", name=re.compile("Spring conference"))).to_contain_text("Scheduled")
    row = await db_pool.fetchrow(
        "SELECT state, body, schedule, approved_by FROM campaigns WHERE org_id = $1 AND name = $2",
        org.id, "Spring conference")
    assert row["state"] == "scheduled" and row["approved_by"] == org.staff
    assert row["body"].endswith("- we're excited!") and "’" not in row["body"]
    assert json.loads(row["schedule"])["at"] == when.strftime("%Y-%m-%dT%H:%M:00")


async def test_settings_save_and_warn_above_30000_segments(page: Page, org: Org, db_pool: asyncpg.Pool) -> None:
    await sign_in(page, org.admin, then="/settings")
    limit = page.get_by_label("Segment limit per campaign")
    warning = page.locator("#segment-limit-warning")
    await expect(limit).to_have_value("20000")
    await expect(warning).to_be_hidden()
    await limit.fill("35000")
    await expect(warning).to_be_visible()
    await page.get_by_label("Alert e-mail addresses").fill("office@example.org\nAlerts@Example.org")
    await page.get_by_role("button", name="Save general settings").click()
    await expect(page.locator("#settings-warnings")).to_contain_text("above the recommended 15,000-30,000")
    await expect(page.locator("form[data-settings-form=general] [data-saved]")).to_have_text("Saved")
    await screenshot(page, "settings")

    saved = await db_pool.fetchrow("SELECT campaign_segment_limit, alert_emails FROM organisations WHERE id = $1",
                                   org.id)
    assert saved["campaign_segment_limit"] == 35_000
    assert saved["alert_emails"] == ["office@example.org", "alerts@example.org"]
    await page.reload()
    await expect(limit).to_have_value("35000")
    await expect(warning).to_be_visible()

    await limit.fill("25000")
    await expect(warning).to_be_hidden()
    await page.get_by_role("button", name="Save general settings").click()
    await expect(page.locator("#settings-warnings")).to_be_hidden()


async def test_an_admin_adds_and_removes_a_staff_test_number_in_settings(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=test-number]")
    await form.get_by_label("Phone number").fill("12")
    await form.get_by_label("Whose it is").fill("Sam's mobile")
    await form.get_by_role("button", name="Add test number").click()
    await expect(form.locator("[data-error-for=phone]")).to_contain_text("not a phone number that can be texted")

    await form.get_by_label("Phone number").fill("(617) 555-0142")
    await form.get_by_role("button", name="Add test number").click()
    numbers = page.locator("ul.test-numbers")
    await expect(numbers).to_contain_text("Sam's mobile +16175550142")
    assert await db_pool.fetchval("SELECT label FROM staff_test_numbers WHERE org_id = $1 AND phone = $2",
                                  org.id, "+16175550142") == "Sam's mobile"

    await page.get_by_role("button", name="Remove Sam's mobile (+16175550142)").click()
    await expect(page.locator("ul.test-numbers")).to_have_count(0)
    assert await db_pool.fetchval("SELECT count(*) FROM staff_test_numbers WHERE org_id = $1", org.id) == 0


async def test_a_staff_user_cannot_open_settings(page: Page, org: Org) -> None:
    await sign_in(page, org.staff)
    await expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings")).to_have_count(0)
    response = await page.goto("/settings")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    await expect(page.get_by_role("link", name="Campaigns")).to_be_visible()


async def test_a_campaign_named_like_markup_leaves_the_composer_whole(page: Page, org: Org,
                                                                     db_pool: asyncpg.Pool) -> None:
    name = "<!--<script>alert(1)</script> & 'quotes'"
    campaign_id = await add_campaign(db_pool, org.id, name, "draft")
    await sign_in(page, org.staff, then=f"/campaigns/{campaign_id}/edit")
    config = await page.evaluate("() => JSON.parse(document.getElementById('composer-config').textContent)")
    assert config["campaign"]["name"] == name
    await expect(page.get_by_label("Campaign name")).to_have_value(name)
    await expect(page.get_by_role("button", name="Preview audience")).to_be_visible()  # the page after it is there
