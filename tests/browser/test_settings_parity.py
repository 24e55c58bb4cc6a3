"""The seed's Settings list, walked in a real browser: each setting is shown, changed, validated and stored.
SMS account (name, SID, type, alphanumeric sender ID, maximum segments, test API mode, change account,
API key), default country prefix with the "+ keeps its country" rule, default send-from, the per-campaign
segment limit with the 15,000-30,000 advice, and alert e-mail addresses.

Not here: that a send honours each one (tests/integration/test_settings_honoured.py changes each through the
API and sends; tests/e2e/test_dispatcher_alpha_sender.py sends from the alphanumeric sender ID), and changing
the account itself (it asks Twilio; see tests/integration/test_api_settings.py). Each sender's rate is here too."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Page, expect

from harness import factories
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import Org, sign_in
from tests.integration import api_harness

SERVICE = "MG" + "5e" * 16


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool)
    await factories.make_sender(db_pool, made.id, SERVICE, kind="messaging_service")
    await factories.make_sms_account(db_pool, made.id, friendly_name="ONA production", account_type="Full")
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff")
    return Org(made.id, admin, staff)


async def test_the_sms_account_settings_are_shown_changed_and_validated(page: Page, org: Org,
                                                                       db_pool: asyncpg.Pool) -> None:
    sid = await db_pool.fetchval("SELECT account_sid FROM sms_accounts WHERE org_id = $1", org.id)
    await sign_in(page, org.admin, then="/settings")
    await expect(page.locator("#account-sid")).to_have_text(sid)
    form = page.locator("form[data-settings-form=account]")
    await expect(form.get_by_label("Account name")).to_have_value("ONA production")
    await expect(form.get_by_label("Account type")).to_have_value("Full")
    await page.get_by_text("Change the linked account").click()
    await expect(page.locator("form[data-settings-form=credentials]").get_by_role(
        "button", name="Change account")).to_be_visible()

    await form.get_by_label("Alphanumeric sender ID").fill("12345")
    await form.get_by_role("button", name="Save account details").click()
    await expect(form.locator("[data-error-for=alpha_sender_id]")).to_contain_text("at least one letter")

    await form.get_by_label("Alphanumeric sender ID").fill("ONA")
    await form.get_by_label("Maximum segments per campaign").fill("5000")
    await form.get_by_label("Test API mode").check()
    await form.get_by_role("button", name="Save account details").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    row = await db_pool.fetchrow("SELECT alpha_sender_id, max_segments, test_mode FROM sms_accounts "
                                 "WHERE org_id = $1", org.id)
    assert tuple(row) == ("ONA", 5000, True)

    await page.get_by_text("Add an API key").click()
    key = page.locator("form[data-settings-form=api-key]")
    await key.get_by_label("API key SID").fill("SK123")
    await key.get_by_label("API key secret").fill("a-long-enough-secret")
    await key.get_by_role("button", name="Save API key").click()
    await expect(key.locator("[data-error-for=api_key_sid]")).not_to_be_empty()
    await key.get_by_label("API key SID").fill("SK" + "c" * 32)
    await key.get_by_label("API key secret").fill("a-long-enough-secret")
    await key.get_by_role("button", name="Save API key").click()
    await page.wait_for_load_state("load")
    await expect(page.locator(".facts-list")).to_contain_text("SK" + "c" * 32)
    assert await db_pool.fetchval("SELECT api_key_sid FROM sms_accounts WHERE org_id = $1", org.id) == "SK" + "c" * 32


async def test_country_send_from_segment_limit_and_alert_emails(page: Page, org: Org, db_pool: asyncpg.Pool) -> None:
    await sign_in(page, org.admin, then="/settings")
    country = page.locator("form[data-settings-form=country]")
    await expect(country.locator("#prefix-hint")).to_contain_text(
        "A number that starts with + keeps its own country, whatever this setting says.")
    await country.get_by_label("Default country prefix").fill("+999")
    await country.get_by_role("button", name="Save country settings").click()
    await expect(country.locator("[data-error-for=default_country_prefix]")).not_to_be_empty()
    await country.get_by_label("Default country prefix").fill("+44")
    await country.get_by_role("button", name="Save country settings").click()
    await expect(country.locator("#prefix-hint")).to_contain_text("(GB)")
    assert await db_pool.fetchval("SELECT default_country_prefix FROM organisations WHERE id = $1", org.id) == "+44"

    general = page.locator("form[data-settings-form=general]")
    send_from = general.get_by_label("Default send-from")
    await expect(send_from.locator("option")).to_have_count(2)  # the toll-free number and the Messaging Service
    await send_from.select_option(label=f"{SERVICE} · messaging service")
    limit = general.get_by_label("Segment limit per campaign")
    await expect(general.locator("#limit-hint")).to_contain_text("15,000–30,000")
    await limit.fill("40000")
    await expect(general.locator("#segment-limit-warning")).to_be_visible()
    await general.get_by_label("Alert e-mail addresses").fill("ops@ona.example.org\nnot-an-address")
    await general.get_by_role("button", name="Save general settings").click()
    await expect(general.locator("[data-error-for=alert_emails]")).not_to_be_empty()

    await general.get_by_label("Alert e-mail addresses").fill("ops@ona.example.org\nCEO@ona.example.org")
    await general.get_by_role("button", name="Save general settings").click()
    await expect(general.locator("[data-saved]")).to_have_text("Saved")
    await expect(page.locator("#settings-warnings")).to_contain_text("above the recommended 15,000-30,000")
    await page.screenshot(path=str(SCREENSHOTS / "textpulse-settings-parity.png"), full_page=True)
    row = await db_pool.fetchrow("SELECT campaign_segment_limit, alert_emails FROM organisations WHERE id = $1", org.id)
    assert (row["campaign_segment_limit"], list(row["alert_emails"])) == (
        40000, ["ops@ona.example.org", "ceo@ona.example.org"])
    default = await db_pool.fetchval("SELECT address FROM senders WHERE org_id = $1 AND is_default", org.id)
    assert default == SERVICE


async def test_each_senders_rate_is_shown_and_an_admin_changes_it(page: Page, org: Org, db_pool: asyncpg.Pool) -> None:
    await sign_in(page, org.admin, then="/settings")
    form = page.locator(f"form[data-settings-form=sender-rate][data-sender={SERVICE}]")
    rate = form.get_by_label(f"Segments per second for {SERVICE}")
    await expect(rate).to_have_value("3")

    for typed in ("0", "151", "2.5"):
        await rate.fill(typed)
        await form.get_by_role("button", name="Save rate").click()
        await expect(form.locator("[data-error-for=segments_per_second]")).not_to_be_empty()
    assert await db_pool.fetchval("SELECT segments_per_second FROM senders WHERE org_id = $1 AND address = $2",
                                org.id, SERVICE) == 3

    await rate.fill("25")
    await form.get_by_role("button", name="Save rate").click()
    await expect(form.locator("[data-saved]")).to_have_text("Saved")
    await expect(form.locator("[data-error-for=segments_per_second]")).to_be_empty()
    assert await db_pool.fetchval("SELECT segments_per_second FROM senders WHERE org_id = $1 AND address = $2",
                                org.id, SERVICE) == 25
    await page.reload()
    await expect(rate).to_have_value("25")
    await page.screenshot(path=str(SCREENSHOTS / "settings-sender-rates.png"), full_page=True)
