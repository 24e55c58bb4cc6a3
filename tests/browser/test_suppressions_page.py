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


async def held_reply(pool: asyncpg.Pool, org_id: uuid.UUID, phone: str, body: str, matched: str) -> None:
    """A doubtful reply as the opt-out service leaves it: stored, queued for review, the number held."""
    message_id = await pool.fetchval(
        """INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, received_at)
           VALUES ($1, $2, $3, $3, '+18885550100', $4, 'other', now() - interval '1 hour') RETURNING id""",
        org_id, "SM" + uuid.uuid4().hex, phone, body)
    await pool.execute("INSERT INTO revocation_reviews (org_id, inbound_message_id, scope, matched, language)"
                       " VALUES ($1, $2, '+18885550100', $3, 'en')", org_id, message_id, matched)
    await pool.execute("INSERT INTO suppressions (org_id, phone, scope, source, reason)"
                       " VALUES ($1, $2, '', 'review_hold', 'awaiting review')", org_id, phone)


async def test_an_admin_decides_replies_to_review_and_records_a_revocation(page: Page, db_pool: asyncpg.Pool) -> None:
    org_id, admin, _ = await seeded_org(db_pool)
    await held_reply(db_pool, org_id, "+16175550111", "Wrong number, who is this?", "wrong number")
    await held_reply(db_pool, org_id, "+16175550122", "Can you stop?", "stop")
    await sign_in(page, admin, "/suppressions")
    reviews = page.locator("#reviews-rows tr")
    await expect(reviews).to_have_count(2)
    await expect(page.locator("#reviews-count")).to_have_text("2 replies wait for a decision.")
    await expect(reviews.first).to_contain_text("Wrong number, who is this?")
    await expect(page.locator("#list-rows tr").first).to_contain_text("Held for review")

    await page.get_by_role("button", name="Not a revocation: the reply from +16175550111").click()
    await expect(reviews).to_have_count(1)
    await page.get_by_role("button", name="Revocation: the reply from +16175550122", exact=True).click()
    await expect(page.locator("#reviews-count")).to_have_text("No reply waits for a decision.")
    sources = {r["phone"]: r["source"] for r in await db_pool.fetch(
        "SELECT phone, source FROM suppressions WHERE org_id = $1 AND scope = ''", org_id)}
    assert sources.get("+16175550111") is None and sources["+16175550122"] == "review"

    manual = page.locator("#manual-revocation")
    await manual.get_by_label("Phone number").fill("(617) 555-0133")
    await manual.get_by_label("How they asked").select_option("email")
    await manual.get_by_role("button", name="Record the revocation").click()
    evidence = manual.get_by_label("Evidence (required)")
    await expect(evidence).to_have_attribute("aria-invalid", "true")
    await evidence.fill("E-mail of 30 Nov: 'please stop the texts'")
    await manual.get_by_role("button", name="Record the revocation").click()
    await expect(manual.locator("[data-saved]")).to_have_text("+16175550133 is revoked.")
    row = await db_pool.fetchrow("SELECT source, channel, evidence FROM consent_history WHERE org_id = $1"
                                 " AND phone = '+16175550133'", org_id)
    assert dict(row) == {"source": "manual", "channel": "email",
                         "evidence": "E-mail of 30 Nov: 'please stop the texts'"}


async def test_staff_see_replies_to_review_but_do_not_decide(page: Page, db_pool: asyncpg.Pool) -> None:
    org_id, _, staff = await seeded_org(db_pool)
    await held_reply(db_pool, org_id, "+16175550144", "not interested", "not interested")
    await sign_in(page, staff, "/suppressions")
    await expect(page.locator("#reviews-rows tr")).to_have_count(1)
    await expect(page.locator("#reviews button")).to_have_count(0)
    await expect(page.locator("#manual-revocation")).to_have_count(0)
