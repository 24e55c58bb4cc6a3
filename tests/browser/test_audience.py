"""Audiences in a real browser: an IQA audience's parameters survive Duplicate -> Edit -> Save and are
shown and edited in order; a member list made from pasted numbers becomes a campaign's audience.

Screenshots go to var/test-artefacts (textpulse-audience-*.png).
"""

from __future__ import annotations

import json
import re
import uuid

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.browser.test_dashboard import Org, screenshot, sign_in
from tests.integration import api_harness

ALASKA = {"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "parameters": ["eq:AK", ""]}


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> Org:
    made = await api_harness.make_org(db_pool, time_zone="America/Anchorage")
    _, admin = await api_harness.make_user(db_pool, made.id, role="admin")
    _, staff = await api_harness.make_user(db_pool, made.id, role="staff")
    return Org(made.id, admin, staff)


async def stored_audience(pool: asyncpg.Pool, campaign_id: str | uuid.UUID) -> str:
    return await pool.fetchval("SELECT audience::text FROM campaigns WHERE id = $1", uuid.UUID(str(campaign_id)))


async def test_a_duplicated_iqa_campaign_keeps_its_parameters_through_edit_and_save(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    original = await db_pool.fetchval(
        """INSERT INTO campaigns (org_id, name, body, audience, state)
           VALUES ($1, 'Alaska chapter: storm closure update', 'Offices are closed today.', $2::jsonb, 'completed')
           RETURNING id""", org.id, json.dumps(ALASKA))
    await sign_in(page, org.staff, then=f"/campaigns/{original}")
    definition = page.locator("#audience-definition")
    await expect(definition).to_have_text(
        "iMIS query $/Textpulse/Members By Chapter with parameters: Parameter 1 = eq:AK, Parameter 2 = (empty)")

    await page.get_by_role("button", name="Duplicate").click()
    await page.wait_for_url(re.compile(r"/campaigns/(?!" + str(original) + r")[0-9a-f-]{36}$"))
    copy_id = page.url.rsplit("/", 1)[-1]
    await expect(definition).to_contain_text("Parameter 1 = eq:AK, Parameter 2 = (empty)")
    stored = await stored_audience(db_pool, copy_id)

    # Edit -> Save without touching anything: the audience is stored exactly as it was.
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Parameter 1", exact=True)).to_have_value("eq:AK")
    await expect(page.get_by_label("Parameter 2", exact=True)).to_have_value("")
    await screenshot(page, "audience-parameters")
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(re.escape(copy_id) + "$"))
    assert await stored_audience(db_pool, copy_id) == stored
    assert json.loads(stored) == ALASKA
    await expect(definition).to_contain_text("Parameter 1 = eq:AK, Parameter 2 = (empty)")

    # The parameters are edited in place, in order.
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Parameter 2", exact=True).fill("eq:Regular")
    await page.get_by_role("button", name="Add a parameter").click()
    await page.get_by_label("Parameter 3", exact=True).fill("eq:2024")
    await page.get_by_role("button", name="Remove Parameter 3").click()
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(re.escape(copy_id) + "$"))
    assert json.loads(await stored_audience(db_pool, copy_id))["parameters"] == ["eq:AK", "eq:Regular"]
    await expect(definition).to_contain_text("Parameter 1 = eq:AK, Parameter 2 = eq:Regular")


async def test_a_list_made_from_pasted_numbers_is_a_campaigns_audience(
    page: Page, org: Org, db_pool: asyncpg.Pool
) -> None:
    await sign_in(page, org.staff, then="/lists")
    await page.get_by_label("Name").fill("Board members")
    await page.get_by_role("button", name="Create list").click()
    await page.wait_for_url(re.compile(r"/lists/[0-9a-f-]{36}$"))
    list_id = page.url.rsplit("/", 1)[-1]

    await page.get_by_label("Numbers or members, one a line").fill(
        "(907) 555-0101\n1001, 907-555-0102, Ada, Byrne\n12\n+1 907 555 0103")
    await page.get_by_role("button", name="Add to the list").click()
    result = page.locator("#add-result")
    await expect(result).to_contain_text("3 members added")
    await expect(result).to_contain_text("Line 3, “12”")
    await expect(page.get_by_label("Numbers or members, one a line")).to_have_value("12")
    await expect(page.locator("#member-count")).to_have_text("3 members")
    await expect(page.locator("#entries tr")).to_have_count(3)
    await expect(page.locator("#entries")).to_contain_text("Ada Byrne")
    await screenshot(page, "audience-list")

    await page.get_by_role("button", name="Remove +19075550103").click()
    await expect(page.locator("#member-count")).to_have_text("2 members")
    await expect(page.locator("#entries tr")).to_have_count(2)

    await page.goto("/campaigns/new")
    await page.get_by_label("Campaign name").fill("Board meeting moved")
    await page.get_by_label("Text message").fill("The board meets on Thursday instead.")
    await page.get_by_text("A list", exact=True).click()
    await page.get_by_label("List", exact=True).select_option(label="Board members (2 members)")
    await page.get_by_role("button", name="Preview audience").click()
    await expect(page.locator("#audience-preview-result")).to_contain_text("2 members of 2 would be texted.")
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    campaign_id = page.url.rsplit("/", 1)[-1]
    assert json.loads(await stored_audience(db_pool, campaign_id)) == {"kind": "list", "list_id": list_id}
    await expect(page.locator("#audience-definition")).to_contain_text("List 'Board members' (2 members)")
