"""The Suppressions page in a real browser: the list with search and source filter, a number's consent
history, an admin adding (reason required) and lifting a suppression, the export link, the iMIS
write-back count, and a staff user who sees the list but not the forms.
"""

from __future__ import annotations

import re
import uuid

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import sign_in
from tests.integration import api_harness


async def seeded_org(pool: asyncpg.Pool) -> tuple[uuid.UUID, str, str]:
    org = await api_harness.make_org(pool)
    _, admin = await api_harness.make_user(pool, org.id, role="admin", name="Dana Whitfield")
    _, staff = await api_harness.make_user(pool, org.id, role="staff", name="Sam Ortiz")
    await pool.execute(
        """INSERT INTO suppressions (org_id, phone, scope, source, reason, created_at) VALUES
           ($1, '+16175550142', '', 'keyword', NULL, now() - interval '2 days'),
           ($1, '+16175550177', '+18885550100', 'twilio_21610', 'Twilio 21610', now() - interval '1 day')""",
        org.id)
    await pool.execute(
        """INSERT INTO consent_history (org_id, phone, scope, action, source, keyword, body, actor, changed)
           VALUES ($1, '+16175550142', '', 'opt_out', 'keyword', 'STOP', 'STOP please', 'member', true)""", org.id)
    return org.id, admin, staff


async def test_an_admin_searches_reads_history_adds_and_lifts(page: Page, db_pool: asyncpg.Pool) -> None:
    org_id, admin, _ = await seeded_org(db_pool)
    await sign_in(page, admin, "/suppressions")
    await expect(page.get_by_role("link", name="Suppressions")).to_have_attribute("aria-current", "page")
    rows = page.locator("#list-rows tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#list-count")).to_have_text("2 suppressed numbers")
    await expect(page.locator("#writebacks")).to_contain_text(re.compile(r"iMIS write-backs: \d+ pending"))

    await page.get_by_label("Number or its last digits").fill("0142")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Member's keyword (STOP)")
    await page.get_by_label("Number or its last digits").fill("+1 (617) 555-0142")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("+16175550142")
    await page.get_by_label("Number or its last digits").fill("Jane")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator('[data-error-for="q"]')).to_have_text(
        "Search with a phone number or its last digits, like (617) 555-0199 or 0199.")
    await page.get_by_label("Number or its last digits").fill("")
    await page.get_by_label("Source").select_option("twilio_21610")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("+18885550100")

    await page.get_by_label("Source").select_option("")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("button", name="Consent history of +16175550142").click()
    history = page.locator("#history-result")
    await expect(history).to_be_focused()
    await expect(history.locator("tbody tr")).to_have_count(1)
    await expect(history).to_contain_text("Opted out")
    await expect(history).to_contain_text("STOP please")

    add = page.locator("form[data-change=add]")
    await add.get_by_label("Phone number").fill("(617) 555-0199")
    await add.get_by_role("button", name="Suppress").click()
    reason = add.get_by_label("Reason (required)")
    await expect(reason).to_be_focused()
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await reason.fill("Asked at the front desk not to be texted")
    await add.get_by_role("button", name="Suppress").click()
    await expect(add.locator("[data-saved]")).to_have_text("+16175550199 is suppressed.")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_contain_text("Asked at the front desk")
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / "textpulse-suppressions.png"), full_page=True)

    lift = page.locator("form[data-change=lift]")
    await lift.get_by_label("Phone number").fill("+16175550199")
    await lift.get_by_label("Reason (required)").fill("Member texted us to opt back in")
    await lift.get_by_role("button", name="Lift").click()
    await expect(lift.locator("[data-saved]")).to_have_text("Lifted for +16175550199.")
    await expect(rows).to_have_count(2)
    actions = [r["action"] for r in await db_pool.fetch(
        "SELECT action FROM consent_history WHERE org_id = $1 AND phone = '+16175550199' ORDER BY id", org_id)]
    assert actions == ["opt_out", "opt_in"]

    export = page.get_by_role("link", name="Export CSV")
    response = await page.request.get(await export.get_attribute("href") or "")
    assert response.ok and "+16175550177" in await response.text()


async def test_staff_see_the_list_but_cannot_change_it(page: Page, db_pool: asyncpg.Pool) -> None:
    _, _, staff = await seeded_org(db_pool)
    await sign_in(page, staff, "/suppressions")
    await expect(page.locator("#list-rows tr")).to_have_count(2)
    await expect(page.locator("form[data-change]")).to_have_count(0)
    await expect(page.get_by_role("heading", name="Consent history")).to_be_visible()
