"""Settings → Event endpoints in a real browser: a bad URL is explained on its field; an endpoint is added with
its secret shown once; its last deliveries show failures, and Redeliver queues one again."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import Org, sign_in
from tests.integration import api_harness


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool)
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin", name="Dana Whitfield")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff", name="Sam Ortiz")
    return Org(made.id, admin, staff)


async def test_an_endpoint_is_added_with_its_secret_once_and_a_failed_delivery_redelivered(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.admin, then="/settings")
    section = page.locator("#event-endpoints")
    await expect(section).to_contain_text("None yet.")
    await section.get_by_text("Add an endpoint").click()
    form = section.locator("form[data-settings-form=endpoint-new]")
    await form.get_by_label("URL").fill("ftp://crm.example.org/events")
    await form.get_by_role("button", name="Add endpoint").click()
    await expect(form.locator("[data-error-for=url]")).to_contain_text("must start with https://")

    await form.get_by_label("URL").fill("https://crm.example.org/events")
    await form.get_by_label("clicked").uncheck()
    await form.get_by_role("button", name="Add endpoint").click()
    secret = section.locator("#new-endpoint-secret")
    await expect(secret).to_contain_text("whsec_")
    await expect(section.locator("[data-endpoint]")).to_contain_text("https://crm.example.org/events")
    endpoint = await db_pool.fetchrow("SELECT id, event_types, secret FROM webhook_endpoints WHERE org_id = $1", org.id)
    assert endpoint is not None and "clicked" not in endpoint["event_types"] and len(endpoint["event_types"]) == 7
    assert (await secret.text_content() or "") not in endpoint["secret"]

    event = uuid.uuid4()
    await db_pool.execute("INSERT INTO webhook_events (id, org_id, type, member_key, body, occurred_at)"
                          " VALUES ($1, $2, 'opted_out', '+14155550134', '{}', now())", event, org.id)
    await db_pool.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, org_id, member_key, attempts, last_status, last_error,"
        " failed_at) VALUES ($1, $2, $3, '+14155550134', 14, 500, 'HTTP 500', now())", event, endpoint["id"], org.id)
    await page.reload()
    row = page.locator("#event-endpoints tr[data-delivery]")
    await expect(row).to_contain_text("Failed")
    await expect(row).to_contain_text("HTTP 500")
    await expect(page.locator("#event-endpoints")).to_contain_text("1 failed")
    await row.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "textpulse-settings-event-endpoints.png"))
    await row.get_by_role("button", name="Redeliver the opted_out event").click()
    await expect(page.locator("#event-endpoints tr[data-delivery]")).to_contain_text("Pending")
    assert await db_pool.fetchval("SELECT failed_at IS NULL FROM webhook_deliveries WHERE event_id = $1", event)

    await page.locator("#event-endpoints").get_by_role("button", name="Disable").click()
    await expect(page.locator("#event-endpoints [data-endpoint]")).to_contain_text("Disabled")
    assert not await db_pool.fetchval("SELECT enabled FROM webhook_endpoints WHERE id = $1", endpoint["id"])
