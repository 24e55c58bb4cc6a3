"""The composer's extras in a real browser: uploading a CSV file as the audience (counts by reason and the
rejected-rows report), previewing the audience (a CSV upload, and an IQA query read from the iMIS
stand-in), and a test send to a staff number through the Twilio stand-in running as its own process (the
organisation's account points at it).

Screenshots go to var/test-artefacts (textpulse-composer-*.png).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from harness import factories
from harness.credentials import seal_credentials
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from standins.imis.app import create_app as create_imis
from standins.imis.config import ImisConfig
from standins.serving import ServerThread
from tests.browser.conftest import serving_api
from tests.browser.test_dashboard import screenshot, sign_in
from tests.integration import api_harness

SENDER = "+18885550100"
MEMBERS_CSV = (
    b"Member ID,First Name,Last Name,Mobile\n"
    b"1001,Ada,Byrne,(617) 555-0101\n"
    b"1002,Ben,Cole,617-555-0102\n"
    b"1003,Cara,Dunne,+16175550103\n"
    b"1004,Dev,Egan,12\n"
)


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


# The iMIS stand-in's 16 hand-written members (standins/members/fixtures.py); "every 23,150th member id"
# opts exactly one of them out in iMIS: 23150.
IMIS = ImisConfig(dataset="small", preexisting_opt_out_every=23150)


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_imis(IMIS)) as server:
        yield server


@pytest.fixture(scope="module")
async def base_url(
    database_url: str, kafka_bootstrap: str, standin: TwilioStandin, imis: ServerThread
) -> AsyncIterator[str]:
    """As conftest's, with Twilio's API at the Twilio stand-in and the deployment's iMIS at the iMIS one."""
    async with serving_api(database_url, kafka_bootstrap, twilio_api_base_url=standin.url,
                           imis_base_url=imis.url) as url:
        yield url


async def linked_org(pool: asyncpg.Pool, standin: TwilioStandin) -> tuple[uuid.UUID, str, uuid.UUID]:
    """An organisation on the stand-in's account, a staff user, and a draft campaign that uses a merge field."""
    org = await api_harness.make_org(pool, sender=SENDER)
    await factories.make_standin_account(pool, org.id, standin.config)
    campaign_id = await factories.make_campaign(pool, org.id, name="AGM",
                                                body="Hi {{first_name}}, the AGM is on Friday.",
                                                audience={"kind": "iqa", "query": "$/Members"},
                                                sender_id=org.sender_id, state="draft")
    _, staff = await api_harness.make_user(pool, org.id, role="staff")
    return org.id, staff, campaign_id


async def arrived(standin: TwilioStandin, to: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=standin.url) as c:
        data = (await c.get("/_control/messages", params={"to": to, "direction": "outbound-api"})).json()
    return data["messages"]


async def test_a_csv_uploaded_in_the_composer_becomes_the_audience_with_its_counts_and_report(
    page: Page, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff")
    await sign_in(page, staff, then="/campaigns/new")
    await page.get_by_label("Campaign name").fill("Chapter meeting")
    await page.get_by_label("Text message").fill("Hi {{first_name|there}}, the chapter meets Tuesday.")
    await page.get_by_text("A CSV upload").click()

    await page.get_by_label("Upload a CSV").set_input_files(
        {"name": "members.csv", "mimeType": "text/csv", "buffer": MEMBERS_CSV})

    result = page.locator("#upload-result")
    await expect(result).to_contain_text("3 rows accepted, 1 rejected; 3 members would be texted.")
    await expect(result.locator("li[data-reason=invalid_number]")).to_have_text(
        re.compile(r"^1\s*the number is not valid"))
    link = result.get_by_role("link", name="Download the rejected rows (CSV)")
    upload_id = await db_pool.fetchval("SELECT id FROM csv_uploads WHERE org_id = $1", org.id)
    await expect(link).to_have_attribute("href", f"/api/v1/audiences/csv/{upload_id}/rejections.csv")
    await expect(page.get_by_label("CSV upload", exact=True)).to_have_value(str(upload_id))
    await expect(page.get_by_label("Expected recipients")).to_have_value("3")
    report = await page.request.get(await link.get_attribute("href") or "")
    assert report.status == 200 and "invalid_number" in await report.text() and "Dev" in await report.text()

    await page.get_by_role("button", name="Preview audience").click()
    preview = page.locator("#audience-preview-result")
    await expect(preview).to_contain_text("3 members of 4 would be texted.")
    await expect(preview.locator("li[data-reason=invalid_number]")).to_contain_text("1")

    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    audience = await db_pool.fetchval("SELECT audience FROM campaigns WHERE org_id = $1 AND name = 'Chapter meeting'",
                                      org.id)
    assert json.loads(audience) == {"kind": "csv", "upload_id": str(upload_id)}


async def test_an_iqa_query_chosen_in_the_composer_is_previewed_from_imis_by_reason(
    page: Page, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)  # default country +1
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff")
    # Linked as deploy/demo.py links its organisations: no base_url of its own, so the deployment's iMIS
    # (TEXTPULSE_IMIS_BASE_URL, here the stand-in), as a run would read it.
    await db_pool.execute("INSERT INTO imis_accounts (org_id, username, password) VALUES ($1, $2, $3)",
                          org.id, IMIS.username, IMIS.password)
    await seal_credentials(db_pool)
    # A member who replied STOP to Textpulse (23145's number): a suppression here, not an iMIS flag.
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) "
                          "VALUES ($1, '+14155550134', '', 'keyword')", org.id)
    # An earlier campaign on the query, so the composer suggests it.
    await db_pool.execute(
        """INSERT INTO campaigns (org_id, name, body, audience, state)
           VALUES ($1, 'Chapter news', 'Hi', '{"kind": "iqa", "query": "$/Textpulse/Members By Chapter"}', 'draft')""",
        org.id)

    await sign_in(page, staff, then="/campaigns/new")
    await page.get_by_label("Campaign name").fill("Chapter elections")
    await page.get_by_label("Text message").fill("Hi {{first_name|there}}, chapter elections close Friday.")
    await expect(page.get_by_label("An iMIS IQA query")).to_be_checked()
    await expect(page.locator("#iqa-suggestions option")).to_have_attribute("value", "$/Textpulse/Members By Chapter")
    await page.get_by_label("IQA query path").fill("$/Textpulse/Members By Chapter")
    await page.get_by_role("button", name="Preview audience").click()

    # The query returns the 15 active members (23160 is inactive), SmsOptOut as a column. Of them:
    # opted out: 23145 (suppressed here) and 23150 (in iMIS); no mobile: 23152 (blank) and 23153 (null);
    # not valid: 23151 (an extension, which SMS cannot reach), 23154 (letters), 23155 (a UK national
    # number, read as American); 23157 shares 23156's household number. That leaves 7 to text.
    preview = page.locator("#audience-preview-result")
    await expect(preview).to_contain_text("7 members of 15 would be texted.")
    reasons = preview.get_by_role("list", name="Left out, by reason")
    await expect(reasons.locator("li")).to_have_count(4)
    for reason, count, words in [("duplicate_number", 1, "another member has the same number"),
                                 ("invalid_number", 3, "the number is not valid"),
                                 ("missing_mobile", 2, "no mobile number"),
                                 ("opted_out", 2, "opted out")]:
        await expect(reasons.locator(f"li[data-reason={reason}]")).to_have_text(re.compile(rf"^{count}\s*{words}$"))
    await expect(preview).not_to_contain_text("Partial preview")
    await screenshot(page, "composer-iqa-preview")
    assert await db_pool.fetchval("SELECT count(*) FROM campaign_runs WHERE org_id = $1", org.id) == 0


async def listed(pool: asyncpg.Pool, org_id: uuid.UUID, numbers: dict[str, str]) -> None:
    """Put ``numbers`` (label: number) on the organisation's staff test numbers."""
    for label, number in numbers.items():
        await pool.execute("INSERT INTO staff_test_numbers (org_id, phone, label, added_by) "
                           "VALUES ($1, $2, $3, 'test')", org_id, number, label)


async def test_a_test_send_goes_to_a_chosen_staff_number_and_a_suppressed_number_shows_the_problem(
    page: Page, db_pool: asyncpg.Pool, standin: TwilioStandin
) -> None:
    org_id, staff, campaign_id = await linked_org(db_pool, standin)
    to, stopped = (f"+1617555{uuid.uuid4().int % 10_000:04d}" for _ in range(2))
    await listed(db_pool, org_id, {"Sam's mobile": to, "Front desk": stopped,
                                   **{f"Phone {i}": f"+1617555030{i}" for i in range(4)}})
    await sign_in(page, staff, then=f"/campaigns/{campaign_id}/edit")

    await page.get_by_label("Sam's mobile").check()
    await page.get_by_role("button", name="Send a test").click()
    result = page.locator("#test-send-result")
    await expect(result).to_contain_text(f"Test sent to 1 of 1 number from {SENDER}.")
    await expect(result.locator("li.sent")).to_contain_text(to)
    await expect(result).to_contain_text("Hi Alex, the AGM is on Friday.")
    messages = await arrived(standin, to)
    assert [(m["from"], m["body"]) for m in messages] == [(SENDER, "Hi Alex, the AGM is on Friday.")]

    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'keyword')",
                          org_id, stopped)
    await page.get_by_label("Sam's mobile").uncheck()
    await page.get_by_label("Front desk").check()
    await page.get_by_role("button", name="Send a test").click()
    await expect(result.locator(".alert.danger")).to_contain_text(
        f"The test was not sent: suppressed, so not texted: {stopped}")
    assert await arrived(standin, stopped) == []

    for box in await page.locator('input[name="test_to"]').all():
        await box.check()
    await page.get_by_role("button", name="Send a test").click()
    await expect(page.locator("#test_to-error")).to_have_text("At most 5 numbers; 6 were chosen.")
    await screenshot(page, "composer-test-send")


async def test_without_staff_test_numbers_the_composer_says_where_they_come_from(
    page: Page, db_pool: asyncpg.Pool, standin: TwilioStandin
) -> None:
    _, staff, campaign_id = await linked_org(db_pool, standin)
    await sign_in(page, staff, then=f"/campaigns/{campaign_id}/edit")

    await expect(page.locator("#test_to-none")).to_contain_text(
        "test texts go only to numbers an admin adds in Settings")
    await expect(page.get_by_role("button", name="Send a test")).to_have_count(0)


async def test_the_estimate_and_the_send_confirmation_show_the_previewed_audience_not_the_typed_figure(
    page: Page, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, staff = await api_harness.make_user(db_pool, org.id, role="staff")
    await sign_in(page, staff, then="/campaigns/new")
    await page.get_by_label("Campaign name").fill("Chapter meeting")
    await page.get_by_label("Text message").fill("Hi {{first_name|there}}, the chapter meets Tuesday.")
    expected = page.get_by_label("Expected recipients")
    await expected.fill("1221")
    await expect(page.locator("#est-recipients")).to_have_text("1,221")
    await expect(page.locator("#est-source")).to_contain_text("From the expected recipients you typed")

    # 4 rows accepted; 1005 shares 1001's number, so 3 would be texted: 1 GSM-7 segment each at $0.0083.
    await page.get_by_text("A CSV upload").click()
    await page.get_by_label("Upload a CSV").set_input_files({"name": "members.csv", "mimeType": "text/csv",
                                                             "buffer": MEMBERS_CSV + b"1005,Eve,Fox,(617) 555-0101\n"})
    await expect(page.locator("#upload-result")).to_contain_text("4 rows accepted")
    await expected.fill("1221")
    await expect(page.locator("#est-recipients")).to_have_text("3")
    await expect(page.locator("#est-segments")).to_have_text("3")
    await expect(page.locator("#est-cost")).to_have_text("$0.02")
    await expect(page.locator("#est-source")).to_have_text("From the audience preview: all 5 members.")

    await page.get_by_role("radio", name="Now").check()
    await page.get_by_role("button", name="Send now").click()
    dialog = page.get_by_role("dialog", name="Send this campaign now?")
    await expect(dialog).to_contain_text("It goes to 3 members (estimated cost $0.02)")
    await screenshot(page, "composer-estimate-confirm")
    await dialog.get_by_role("button", name="Cancel").click()
    assert await db_pool.fetchval("SELECT count(*) FROM campaigns WHERE org_id = $1", org.id) == 0
