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
