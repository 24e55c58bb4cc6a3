"""Approval before sending (issue 27) in a real browser: an admin requires approval in Settings, an author
(who is an approver too) submits a campaign and cannot approve it, a second approver rejects it with a
comment the author then reads, and approves it once it is submitted again."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import sign_in
from tests.integration import api_harness


@dataclass
class Org:
    id: uuid.UUID
    admin: str
    author: str
    approver: str


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool)
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin", name="Dana Whitfield")
    _, author = await api_harness.make_user(db_pool, made.id, role="approver", name="Sam Ortiz")
    _, approver = await api_harness.make_user(db_pool, made.id, role="approver", name="Alex Reyes")
    return Org(made.id, admin, author, approver)


async def as_user(browser: Browser, base_url: str, email: str, then: str) -> Page:
    context = await browser.new_context(base_url=base_url, viewport={"width": 1440, "height": 900}, locale="en-US")
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await sign_in(page, email, then=then)
    return page


async def test_a_second_user_approves_a_campaign_its_author_cannot(
    page: Page, browser: Browser, base_url: str, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=general]")
    await form.get_by_label("Require approval before sending").check()
    await form.get_by_role("button", name="Save general settings").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    assert await db_pool.fetchval("SELECT require_approval FROM organisations WHERE id = $1", org.id) is True

    campaign_id = await db_pool.fetchval(
        "INSERT INTO campaigns (org_id, name, body, audience, created_by, updated_by, content_authors) "
        "VALUES ($1, 'AGM reminder', 'Hi, the AGM is on Thursday.', $2::jsonb, $3, $3, ARRAY[$3]) RETURNING id",
        org.id, json.dumps({"kind": "iqa", "query": "$/Members/AGM"}), org.author)
    path = f"/campaigns/{campaign_id}"

    author = await as_user(browser, base_url, org.author, path)
    await expect(author.get_by_role("link", name="Schedule or send")).to_have_count(0)
    await author.get_by_role("button", name="Submit for approval").click()
    await author.get_by_role("dialog").get_by_role("button", name="Submit").click()
    await expect(author.locator("h1 .badge")).to_have_text("In review")
    await expect(author.locator("#review-waiting")).to_be_visible()
    await expect(author.get_by_role("button", name="Approve")).to_have_count(0)
    # The page offers nothing, and the API refuses the author's own approval as well.
    forced = await author.evaluate(
        """async (url) => (await fetch(url, {method: "POST", headers: {"Content-Type": "application/json",
             "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}, body: "{}"})).status""",
        f"/api/v1/campaigns/{campaign_id}/approve")
    assert forced == 403

    approver = await as_user(browser, base_url, org.approver, path)
    review = approver.locator("#review-form")
    await review.get_by_role("button", name="Reject").click()
    await expect(review.locator("[data-error-for=comment]")).not_to_have_text("")
    await review.get_by_label("Comment (required to reject)").fill("Say which room it is in.")
    await review.get_by_role("button", name="Reject").click()
    await expect(approver.locator("h1 .badge")).to_have_text("Draft")

    await author.reload()
    await expect(author.locator("#review-comment")).to_contain_text("Say which room it is in.")
    await author.get_by_role("button", name="Submit for approval").click()
    await author.get_by_role("dialog").get_by_role("button", name="Submit").click()
    await expect(author.locator("h1 .badge")).to_have_text("In review")

    await approver.reload()
    await approver.locator("#review-form").get_by_role("button", name="Approve").click()
    await expect(approver.locator("h1 .badge")).to_have_text("Approved")
    await expect(approver.get_by_text(f"approved by {org.approver}")).to_be_visible()
    await approver.screenshot(path=str(SCREENSHOTS / "textpulse-campaign-approved.png"), full_page=True)
    row = await db_pool.fetchrow("SELECT state, approved_by FROM campaigns WHERE id = $1", campaign_id)
    assert (row["state"], row["approved_by"]) == ("approved", org.approver)

    await author.reload()
    await expect(author.get_by_role("link", name="Schedule or send")).to_be_visible()
    for opened in (author, approver):
        await opened.context.close()
