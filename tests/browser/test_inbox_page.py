"""The Inbox in a real browser: the unread count in the navigation, a conversation read (without JavaScript
too), answered with the segment counter, assigned and marked done; a suppressed member's page says why it
cannot be answered."""

from __future__ import annotations

import uuid

import asyncpg
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import sign_in
from tests.integration import api_harness

SENDER = "+18885550170"


async def conversation(pool: asyncpg.Pool, org_id: uuid.UUID, phone: str, *bodies: str) -> int:
    for body in bodies:
        await pool.execute(
            "INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, received_at)"
            " VALUES ($1, $2, $3, $3, $4, $5, 'other', now())", org_id, "SM" + uuid.uuid4().hex, phone, SENDER, body)
    return int(await pool.fetchval(
        "INSERT INTO inbox_conversations (org_id, phone, sender, unread, last_message_at)"
        " VALUES ($1, $2, $3, $4, now()) RETURNING id", org_id, phone, SENDER, len(bodies)))


async def test_staff_read_and_answer_a_conversation(page: Page, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff", name="Sam Ortiz")
    conversation_id = await conversation(db_pool, org.id, "+16175550150", "Is parking free?", "And is it close?")
    await sign_in(page, staff, "/inbox")
    await expect(page.locator("#nav-unread")).to_have_text("1")
    row = page.locator("#conversations tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("And is it close?")

    await row.get_by_role("link", name="+16175550150").click()
    await expect(page.locator("#thread .message.in")).to_have_count(2)
    await expect(page.locator("#nav-unread")).to_be_hidden()  # reading it cleared its unread count

    box = page.get_by_label("Your text to the member")
    await box.fill("Yes, parking is free and next door.")
    await expect(page.locator("#reply-counter")).to_contain_text("1 segment")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#thread .message.out")).to_have_count(1)
    await expect(page.locator("#thread .message.out")).to_contain_text("Yes, parking is free and next door.")
    texts = await db_pool.fetch("SELECT kind, body, state, author FROM one_off_texts WHERE conversation_id = $1",
                                conversation_id)
    assert [(t["kind"], t["body"], t["state"], t["author"]) for t in texts] == [
        ("staff_reply", "Yes, parking is free and next door.", "pending", staff)]

    await page.get_by_label("Assigned to").select_option(label="Sam Ortiz")
    await page.get_by_role("button", name="Assign").click()
    await expect(page.locator("#toast")).to_have_text("Assigned.")
    await page.get_by_role("button", name="Mark done").click()
    await expect(page.locator("#conversation-state")).to_have_text("Done")
    state = await db_pool.fetchrow("SELECT state, assigned_to IS NOT NULL AS assigned FROM inbox_conversations"
                                   " WHERE id = $1", conversation_id)
    assert dict(state) == {"state": "done", "assigned": True}
    await page.screenshot(path=str(SCREENSHOTS / "inbox-conversation.png"), full_page=True)


async def test_a_suppressed_member_cannot_be_answered_and_the_page_says_why(page: Page, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff")
    conversation_id = await conversation(db_pool, org.id, "+16175550151", "STOP texting me please")
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'reply')",
                          org.id, "+16175550151")
    await sign_in(page, staff, f"/inbox/{conversation_id}")
    await expect(page.locator("#cannot-reply")).to_contain_text("asked in their own words not to be texted")
    await expect(page.get_by_label("Your text to the member")).to_have_count(0)


async def test_the_inbox_reads_without_javascript(browser: Browser, base_url: str, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff")
    await conversation(db_pool, org.id, "+16175550152", "Thanks for the reminder")
    context = await browser.new_context(base_url=base_url, java_script_enabled=False)
    try:
        page = await context.new_page()
        await sign_in(page, staff, "/inbox")
        await page.get_by_role("link", name="+16175550152").click()
        await expect(page.locator("#thread .message.in .body")).to_have_text("Thanks for the reminder")
    finally:
        await context.close()


async def test_an_admin_sets_who_answers_help_and_adds_a_keyword(page: Page, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    _, admin = await api_harness.make_user(db_pool, org.id, role="admin")
    await sign_in(page, admin, "/inbox/keywords")
    await page.get_by_label("Textpulse answers").check()
    await page.get_by_label("Contact in the help text").fill("(617) 555-0100")
    await page.get_by_label("One a line").fill("STOP nope")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#toast")).to_contain_text("Twilio acts on")
    await page.get_by_label("One a line").fill("renew Renew at https://example.org/renew")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#help-text")).to_contain_text("Questions: (617) 555-0100.")
    rows = await db_pool.fetch("SELECT keyword, reply FROM org_keywords WHERE org_id = $1", org.id)
    assert [(r["keyword"], r["reply"]) for r in rows] == [("RENEW", "Renew at https://example.org/renew")]
    assert await db_pool.fetchval("SELECT help_answered_by FROM organisations WHERE id = $1", org.id) == "textpulse"


async def _campaign_conversation(pool: asyncpg.Pool, org_id: uuid.UUID, name: str, phone: str, days_ago: int) -> None:
    campaign_id = await pool.fetchval(
        "INSERT INTO campaigns (org_id, name, body, audience, state) VALUES ($1, $2, 'Hi',"
        " '{\"kind\": \"iqa\", \"query\": \"$/Members\"}', 'completed') RETURNING id", org_id, name)
    run_id = await pool.fetchval(
        "INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted, sent)"
        " VALUES ($1, $2, now(), 'completed', 1, 1) RETURNING id", org_id, campaign_id)
    await pool.execute(
        "INSERT INTO inbox_conversations (org_id, phone, sender, unread, last_message_at, run_id, recipient_id)"
        " VALUES ($1, $2, $3, 1, now() - make_interval(days => $4), $5, $6)",
        org_id, phone, SENDER, days_ago, run_id, uuid.uuid4())


async def test_home_counts_unread_and_the_inbox_filters_by_campaign_and_day_without_javascript(
    browser: Browser, base_url: str, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, approver = await api_harness.make_user(db_pool, org.id, role="approver", name="Alex Reyes")
    await _campaign_conversation(db_pool, org.id, "Gala night", "+16175550160", days_ago=0)
    await _campaign_conversation(db_pool, org.id, "Renewals", "+16175550161", days_ago=10)
    await conversation(db_pool, org.id, "+16175550162", "No campaign here")
    context = await browser.new_context(base_url=base_url, java_script_enabled=False)
    try:
        page = await context.new_page()
        await sign_in(page, approver, "/")
        await expect(page.locator(".topbar .who")).to_contain_text("Approver")
        await expect(page.locator("#home-unread")).to_have_text("3")
        await page.get_by_role("link", name="3 conversations have unread replies").click()
        rows = page.locator("#conversations tbody tr")
        await expect(rows).to_have_count(3)

        await page.get_by_label("Campaign").select_option(label="Renewals")
        await page.get_by_role("button", name="Filter").click()
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("+16175550161")
        await expect(page.get_by_label("Campaign")).to_have_value(
            str(await db_pool.fetchval("SELECT id FROM campaigns WHERE org_id = $1 AND name = 'Renewals'", org.id)))

        await page.get_by_label("Campaign").select_option(label="All campaigns")
        today = await db_pool.fetchval("SELECT (now() AT TIME ZONE 'America/New_York')::date")
        await page.get_by_label("From").fill(today.isoformat())
        await page.get_by_label("To").fill(today.isoformat())
        await page.get_by_role("button", name="Filter").click()
        await expect(rows).to_have_count(2)  # the reply of ten days ago is left out
        await expect(page.locator("#conversations")).not_to_contain_text("+16175550161")

        response = await page.goto("/inbox?from_day=yesterday")
        assert response is not None and response.status == 422
        await expect(page.locator("main")).to_contain_text("from_day")
    finally:
        await context.close()
