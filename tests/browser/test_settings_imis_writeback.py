"""Settings → iMIS opt-out write-back in a real browser: the check names what iMIS lacks, an incomplete
choice is explained on its field, and a complete one saves and checks clean."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from playwright.async_api import Page, expect

from harness.credentials import seal_credentials
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.imis.parties import SMS_COMMUNICATION_TYPE_ID
from standins.serving import ServerThread
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import Org, sign_in
from tests.integration import api_harness


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    config = ImisConfig(dataset="small", preexisting_opt_out_every=0, activity_types=("TEXTUNSUB",))
    with ServerThread(create_app(config)) as server:
        yield server


@pytest.fixture
async def org(db_pool: asyncpg.Pool, imis: ServerThread) -> Org:
    made = await api_harness.make_org(db_pool)
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin", name="Dana Whitfield")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff", name="Sam Ortiz")
    await db_pool.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) "
                          "VALUES ($1, $2, 'SMS_INTEGRATION', 'standin-password')", made.id, imis.url)
    await seal_credentials(db_pool)
    return Org(made.id, admin, staff)


async def test_the_check_names_what_is_missing_and_a_preference_needs_its_type(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator("form[data-settings-form=imis-writeback]")
    await expect(form.get_by_label("TEXTUNSUB activities", exact=False)).to_be_checked()

    await form.get_by_role("button", name="Check in iMIS").click()
    result = page.locator("#imis-check-result")
    await expect(result).to_contain_text("iMIS is missing:")
    await expect(result).to_contain_text("the activity type TEXTUNSUB_A")
    await expect(result).to_contain_text("Found: the activity type TEXTUNSUB.")
    await form.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "textpulse-settings-imis-writeback.png"))

    await form.get_by_label("A communication preference", exact=False).check()
    await form.get_by_role("button", name="Save write-back").click()
    await expect(form.locator("[data-error-for=sms_communication_type_id]")).to_contain_text("is required")
    assert await db_pool.fetchval("SELECT writeback_target FROM imis_accounts WHERE org_id = $1", org.id) == "activity"

    await form.get_by_label("SMS communication type id").fill(SMS_COMMUNICATION_TYPE_ID)
    await form.get_by_role("button", name="Save write-back").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    await form.get_by_role("button", name="Check in iMIS").click()
    await expect(result).to_contain_text("iMIS has everything this write-back needs.")
    await expect(result).to_contain_text("Text messages (SMS)")
    saved = await db_pool.fetchrow("SELECT writeback_target, sms_communication_type_id FROM imis_accounts "
                                   "WHERE org_id = $1", org.id)
    assert tuple(saved) == ("preference", SMS_COMMUNICATION_TYPE_ID)
