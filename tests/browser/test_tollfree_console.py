"""The toll-free verification console in a real browser: a restricted number is checked with Twilio (the
stand-in), its prefilled form refused with errors in place, then submitted; a rejected one shows Twilio's
reasons and edit window; the composer says why an unapproved sender cannot text US/Canada and links here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from harness import factories
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import Org, sign_in
from tests.integration import api_harness
from tests.integration.api_harness import serving_api

TOKEN = "0123456789abcdef0123456789abcdef"
RESTRICTED, REJECTED = "+18885550104", "+18885550105"
ACCOUNTS = ["AC" + f"{n:02x}" * 16 for n in range(0x40, 0x44)]
FREE_ACCOUNTS = iter(ACCOUNTS)


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    numbers = [{"phone_number": RESTRICTED, "verification": "restricted"},
               {"phone_number": REJECTED, "verification": "rejected"}]
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [], extra_config={
        "other_accounts": [{"account_sid": a, "auth_token": TOKEN} for a in ACCOUNTS], "numbers": numbers})
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
async def base_url(database_url: str, kafka_bootstrap: str, standin: TwilioStandin) -> AsyncIterator[str]:
    async with serving_api(database_url, kafka_bootstrap, twilio_api_base_url=standin.url) as url:
        yield url


@pytest.fixture
async def org(db_pool: asyncpg.Pool, standin: TwilioStandin) -> Org:
    made = await api_harness.make_org(db_pool, sender=RESTRICTED)
    await factories.make_sender(db_pool, made.id, REJECTED, verification="rejected")
    await db_pool.execute("UPDATE senders SET verification = 'restricted' WHERE id = $1", made.sender_id)
    await db_pool.execute("UPDATE organisations SET alert_emails = '{ops@ona.example.org}' WHERE id = $1", made.id)
    await factories.make_sms_account(db_pool, made.id, account_sid=next(FREE_ACCOUNTS), auth_token=TOKEN)
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff")
    async with httpx.AsyncClient(base_url=f"{standin.url}/_control") as control:
        await control.post("/reset")
        await control.put(f"/verifications/{REJECTED}", json={
            "status": "TWILIO_REJECTED", "rejection_reason": "Opt-in image does not show the consent language.",
            "error_code": 30509})
    return Org(made.id, admin, staff)


async def test_an_admin_checks_and_submits_a_number_and_sees_a_rejection(page: Page, org: Org,
                                                                         db_pool: asyncpg.Pool) -> None:
    await sign_in(page, org.admin, then="/settings")
    restricted = page.locator(f"[data-address='{RESTRICTED}']")
    rejected = page.locator(f"[data-address='{REJECTED}']")

    await restricted.get_by_role("button", name="Check with Twilio now").click()
    await expect(restricted.locator("[data-tfv-status]")).to_have_text("not submitted (restricted)")
    await rejected.get_by_role("button", name="Check with Twilio now").click()
    await expect(rejected.locator("[data-tfv-detail]")).to_contain_text(
        "Opt-in image does not show the consent language. (error 30509)")
    await expect(rejected.locator("[data-tfv-detail]")).to_contain_text("Can be edited and resubmitted until")
    await expect(rejected.get_by_role("button", name="Edit and resubmit")).to_be_visible()

    await restricted.get_by_role("button", name="Submit for verification").click()
    form = page.locator("form[data-tfv-form]")
    await expect(form.get_by_label("Notification e-mail")).to_have_value("ops@ona.example.org")
    await expect(form.get_by_label("Business name")).to_have_value(re.compile(r"^Org "))
    await form.get_by_role("button", name="Send to Twilio").click()
    await expect(form.locator("[data-error-for=business_website]")).not_to_be_empty()
    await expect(form.locator("[data-error-for=opt_in_image_urls]")).not_to_be_empty()
    assert await db_pool.fetchval("SELECT count(*) FROM sender_verifications WHERE org_id = $1 AND "
                                  "submitted IS NOT NULL", org.id) == 0

    await form.get_by_label("Website").fill("https://ona.example.org")
    await form.get_by_label("Use-case summary").fill("Renewal reminders for members who opted in on their profile.")
    await form.get_by_label("Production message sample").fill(
        "ONA: your membership renews 1 July. Reply STOP to opt out.")
    await form.get_by_label("Messages per month").fill("10,000")
    await form.get_by_label("Opt-in image URLs").fill("https://ona.example.org/opt-in-profile.png")
    await form.get_by_role("button", name="Send to Twilio").click()
    await expect(restricted.locator("[data-tfv-status]")).to_have_text("pending review")
    await expect(form).to_be_hidden()
    await page.locator("#tfv").screenshot(path=str(SCREENSHOTS / "textpulse-settings-tollfree.png"))
    assert await db_pool.fetchval("SELECT verification FROM senders WHERE org_id = $1 AND address = $2",
                                  org.id, RESTRICTED) == "pending"


async def test_the_composer_says_why_an_unapproved_sender_is_refused_and_links_to_the_console(
    page: Page, org: Org
) -> None:
    await sign_in(page, org.admin, then="/campaigns/new")
    warning = page.locator("#sender-unverified")
    await expect(warning).to_be_visible()  # the default sender is restricted
    await expect(warning).to_contain_text("restricted with Twilio: it cannot text US or Canadian numbers")
    await warning.get_by_role("link", name="Open its toll-free verification").click()
    await page.wait_for_url("**/settings#tfv")
