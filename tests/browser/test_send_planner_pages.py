"""The send planner and the sending rules in a real browser: the composer says who will be held until when
before launch (for the time chosen), and Settings saves the organisation's window, days and marketing cap
(only tighter than the law).

Screenshots go to var/test-artefacts (textpulse-send-plan-*.png).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.test_composer_extras import MEMBERS_CSV
from tests.browser.test_dashboard import screenshot, sign_in
from tests.integration import api_harness


async def test_the_composer_says_who_is_held_until_when_before_launch(page: Page, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff")
    # The members are in Boston. The organisation's own hour is one that is not now there, so they are held
    # for it whatever the time of the test: 8 pm today before noon, 8 am tomorrow after.
    morning = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).hour < 12
    start = 20 * 60 if morning else 8 * 60
    await db_pool.execute("UPDATE organisations SET send_window_start_min = $2, send_window_end_min = $2 + 60 "
                          "WHERE id = $1", org.id, start)
    await sign_in(page, staff, then="/campaigns/new")
    await page.get_by_label("Campaign name").fill("Chapter meeting")
    await page.get_by_label("Text message").fill("Hi {{first_name|there}}, the chapter meets Tuesday.")
    await page.get_by_text("A CSV upload").click()
    await page.get_by_label("Upload a CSV").set_input_files({"name": "members.csv", "mimeType": "text/csv",
                                                             "buffer": MEMBERS_CSV})
    plan = page.locator("#plan-sentences")
    words = "8 pm Eastern today" if morning else "8 am Eastern tomorrow"
    await expect(plan).to_contain_text(f"3 members will be held until {words}.")
    await expect(page.locator("#plan-now")).to_have_text("0")
    await expect(page.locator("#plan-held")).to_have_text("3")
    await screenshot(page, "send-plan-composer")

    # Planned for the time chosen: at 10 past the window's opening, two days on, every member is texted at once.
    day = (datetime.now(UTC).astimezone(ZoneInfo("America/New_York")) + timedelta(days=2)).date()
    await page.get_by_text("At a set time").click()
    await page.locator("#at").fill(f"{day.isoformat()}T{start // 60:02d}:10")
    await expect(page.locator("#plan-when")).to_contain_text(f"If sent at {day.strftime('%a')}")
    await expect(page.locator("#plan-now")).to_have_text("3")
    await expect(page.locator("#plan-held")).to_have_text("0")
    await page.get_by_text("Save as draft").click()  # no schedule: planned for now again
    await expect(page.locator("#plan-when")).to_have_text("If sent now")
    await expect(page.locator("#plan-held")).to_have_text("3")

    await page.get_by_label("Hold members for their local window for up to").fill("0")
    await expect(page.locator("#plan-outside")).to_have_text("3")
    await expect(plan).to_contain_text("3 members cannot be texted before the campaign's hold limit")
    await page.get_by_label("A service text").check()
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    saved = await db_pool.fetchrow("SELECT transactional, hold_limit_s FROM campaigns WHERE org_id = $1", org.id)
    assert tuple(saved) == (True, 0)


async def test_settings_saves_the_send_window_days_and_cap_and_refuses_a_wider_window(
    page: Page, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, admin = await api_harness.make_user(db_pool, org.id, role="admin")
    await sign_in(page, admin, then="/settings")
    form = page.locator("form[data-settings-form=send-rules]")
    await form.get_by_label("Texts start at").fill("07:00")
    await form.get_by_label("Texts stop at").fill("19:00")
    await form.get_by_role("button", name="Save sending hours and caps").click()
    await expect(form.locator("[data-error-for=window]")).to_contain_text("can only narrow the law's hours")
    assert await db_pool.fetchval("SELECT send_window_start_min FROM organisations WHERE id = $1", org.id) == 0

    await form.get_by_label("Texts start at").fill("09:00")
    await form.get_by_label("Sun").uncheck()
    await form.get_by_label("Holidays with no texts").fill("2026-12-25, 2027-01-01")
    await form.get_by_label("At most this many marketing texts per member").fill("3")
    await form.get_by_label("in any this many days").fill("7")
    await form.get_by_role("button", name="Save sending hours and caps").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    row = await db_pool.fetchrow("SELECT send_window_start_min, send_window_end_min, send_days, holidays::text[], "
                                 "marketing_cap_texts, marketing_cap_days FROM organisations WHERE id = $1", org.id)
    assert tuple(row) == (540, 1140, [0, 1, 2, 3, 4, 5], ["2026-12-25", "2027-01-01"], 3, 7)
    await page.reload()
    await expect(form.get_by_label("Texts start at")).to_have_value("09:00")
    await expect(form.get_by_label("Sun")).not_to_be_checked()
    await screenshot(page, "send-plan-settings")
