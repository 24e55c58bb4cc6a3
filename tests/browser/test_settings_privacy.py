"""Settings in a real browser: the retention fields save with errors in plain words, and an admin erases a
member after confirming, with what was erased shown."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import Org, sign_in
from tests.integration import api_harness

MEMBER = "+447400123456"


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool, prefix="+44", time_zone="Europe/London")
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin", name="Dana Whitfield")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff", name="Sam Ortiz")
    return Org(made.id, admin, staff)


async def test_the_revocation_confirmation_is_turned_on_and_a_link_refused(page: Page, org: Org,
                                                                            db_pool: asyncpg.Pool) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=general]")
    switch = form.get_by_label("Text the confirmation")
    await expect(switch).not_to_be_checked()
    wording = form.get_by_label("Its wording")
    await expect(wording).to_have_value("You will receive no more texts from us. Reply START to opt back in.")

    await switch.check()
    await wording.fill("No more texts from us. Offers at https://example.org")
    await form.get_by_role("button", name="Save general settings").click()
    await expect(form.locator("[data-error-for=revocation_confirmation_text]")).to_contain_text("must not hold a link")
    await wording.fill("Alumni Society: no more texts from us. Reply START to rejoin.")
    await form.get_by_role("button", name="Save general settings").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    saved = await db_pool.fetchrow("SELECT revocation_confirmation, revocation_confirmation_text FROM organisations"
                                   " WHERE id = $1", org.id)
    assert tuple(saved) == (True, "Alumni Society: no more texts from us. Reply START to rejoin.")


async def test_retention_days_are_saved_and_a_bad_value_is_explained(page: Page, org: Org,
                                                                     db_pool: asyncpg.Pool) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=general]")
    replies = form.get_by_label("Members' replies")
    await expect(replies).to_have_value("180")
    await expect(form.get_by_label("Raw Twilio webhooks")).to_have_value("30")

    await replies.fill("0")
    await form.get_by_label("Rendered texts").fill("5000")
    await form.get_by_role("button", name="Save general settings").click()
    await expect(form.locator("[data-error-for=retention_reply_days]")).to_have_text(
        "Days members' replies are kept must be at least 1.")
    await expect(form.locator("[data-error-for=retention_body_days]")).to_have_text(
        "Days rendered texts are kept must be at most 3650.")
    await expect(replies).to_have_attribute("aria-invalid", "true")

    await form.get_by_label("Rendered texts").fill("")
    await replies.fill("365")
    await form.get_by_role("button", name="Save general settings").click()
    await expect(form.locator("[data-error-for=retention_body_days]")).to_have_text(
        "is required: it cannot be left empty")

    await form.get_by_label("Rendered texts").fill("60")
    await form.get_by_role("button", name="Save general settings").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    await form.locator("fieldset.retention").scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "textpulse-settings-retention.png"))
    saved = await db_pool.fetchrow("SELECT retention_reply_days, retention_body_days, retention_webhook_days "
                                   "FROM organisations WHERE id = $1", org.id)
    assert tuple(saved) == (365, 60, 30)
    await page.reload()
    await expect(replies).to_have_value("365")


async def test_an_admin_erases_a_member_after_confirming(page: Page, org: Org, db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'keyword')",
                          org.id, MEMBER)
    await db_pool.execute("INSERT INTO member_phone_index (org_id, phone, member_id) VALUES ($1, $2, '10234')",
                          org.id, MEMBER)
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=erasure]")

    await form.get_by_label("or phone number").fill("07400 12")
    await form.get_by_role("button", name="Erase member").click()
    await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await form.get_by_role("button", name="Erase member").click()
    await page.get_by_role("dialog").get_by_role("button", name="Erase member").click()
    await expect(form.locator("[data-error-for=phone]")).to_contain_text("not a phone number that can be texted")

    await form.get_by_label("or phone number").fill("07400 123456")
    await form.get_by_role("button", name="Erase member").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("cannot be brought back")
    await dialog.get_by_role("button", name="Erase member").click()
    result = page.locator("#erasure-result")
    await expect(result).to_have_text("Erased: 1 suppression (kept as a code), 1 member-number link. "
                                      "They stay opted out.")
    await result.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "textpulse-settings-erasure.png"))
    assert await db_pool.fetchval("SELECT count(*) FROM suppressions WHERE org_id = $1", org.id) == 0
    assert await db_pool.fetchval("SELECT count(*) FROM erased_suppressions WHERE org_id = $1", org.id) == 1

    await form.get_by_label("iMIS ID").fill(f"nobody-{uuid.uuid4().hex[:6]}")
    await form.get_by_role("button", name="Erase member").click()
    await page.get_by_role("dialog").get_by_role("button", name="Erase member").click()
    await expect(form.locator("[data-form-error]")).to_contain_text("holds nothing for that member")


async def test_the_member_cap_is_saved_explained_when_bad_and_emptied_back_to_the_platforms(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=general]")
    cap = form.get_by_label("Most members in one run")
    error = form.locator("[data-error-for=run_member_cap]")
    save = form.get_by_role("button", name="Save general settings")
    await expect(cap).to_have_value("")
    await expect(form.locator("#member-cap-hint")).to_contain_text("the platform's limit, 250,000 members")

    for typed, said in (("lots", "Most members in one run must be a whole number."),
                        ("0", "Most members in one run must be at least 1."),
                        ("20000000", "Most members in one run must be at most 10000000.")):
        await cap.fill(typed)
        await save.click()
        await expect(error).to_have_text(said)
        await expect(cap).to_have_value(typed)  # kept as typed, to correct
    assert await db_pool.fetchval("SELECT run_member_cap FROM organisations WHERE id = $1", org.id) is None

    await cap.fill("12,000")
    await save.click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    await expect(error).to_have_text("")
    assert await db_pool.fetchval("SELECT run_member_cap FROM organisations WHERE id = $1", org.id) == 12_000
    await page.reload()
    await expect(cap).to_have_value("12000")

    await cap.fill("")
    await save.click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    assert await db_pool.fetchval("SELECT run_member_cap FROM organisations WHERE id = $1", org.id) is None
