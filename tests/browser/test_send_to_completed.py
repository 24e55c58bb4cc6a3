"""Issue 10 end to end, in a real browser against the whole stack as real processes.

``python -m deploy.stack up`` starts PostgreSQL, Kafka, the Twilio and iMIS stand-ins and every service
in a var/ and on ports of this test's own. The demo organisations are seeded (not the demo's long live
campaign); the demo admin composes a campaign whose audience is a 5-number CSV upload, sends it now,
watches the campaign page reach Completed, and sees Home's "segments today" grow. Each of the 5 messages
is at the Twilio stand-in exactly once. ``down --wipe`` removes everything at the end.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from deploy.stack import REPO, VAR
from harness.credentials import TEST_SECRETS, seal_credentials
from harness.dispatch import daytime_clock_file
from harness.processes import free_port, free_port_base
from libs.common.db import Connection
from services.api.seed import seed_demo
from standins.imis.config import ImisConfig

ADMIN, PASSWORD = "admin@harbornurses.example.org", "harbor-demo-admin"
SENDER = "+18885550100"
NUMBERS = [f"+1617555{n:04d}" for n in range(3101, 3106)]
MEMBERS_CSV = ("Member ID,First Name,Last Name,Mobile\n" + "".join(
    f"{2001 + i},Member{i},Test,{number}\n" for i, number in enumerate(NUMBERS))).encode()
ARTEFACTS = REPO / "var" / "test-artefacts"


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TEXTPULSE_") and "KAFKA_BOOTSTRAP_SERVERS" not in k}
    env.update(
        TEXTPULSE_VAR_DIR=str(VAR / f"e2e-send-{uuid.uuid4().hex[:8]}"),
        TEXTPULSE_PG_PORT=str(free_port()),
        TEXTPULSE_KAFKA_PORT=str(free_port()),
        TEXTPULSE_KAFKA_LIBS=str(VAR / "kafka" / "libs"),
        TEXTPULSE_PORT_BASE=str(free_port_base()),
        TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE=str(daytime_clock_file()),  # quiet hours open at any hour
    )
    try:
        started = subprocess.run([sys.executable, "-m", "deploy.stack", "up"], cwd=REPO, env=env,
                                 capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        yield env
    finally:
        logs = Path(env["TEXTPULSE_VAR_DIR"]) / "log"
        if logs.exists():  # keep the services' logs of the run next to the screenshots
            saved = ARTEFACTS / "send-to-completed-logs"
            saved.mkdir(parents=True, exist_ok=True)
            for log in logs.glob("*.log"):
                (saved / log.name).write_bytes(log.read_bytes()[-200_000:])
        subprocess.run([sys.executable, "-m", "deploy.stack", "down", "--wipe"], cwd=REPO, env=env,
                       check=False, capture_output=True)


@pytest.fixture(scope="module")
def base(stack: dict[str, str]) -> int:
    return int(stack["TEXTPULSE_PORT_BASE"])


@pytest.fixture(scope="module")
def base_url(base: int) -> str:  # overrides conftest's in-process API: the stack's API process
    return f"http://127.0.0.1:{base}"


@pytest.fixture(scope="module")
def stack_database_url(stack: dict[str, str]) -> str:
    return f"postgresql://textpulse:textpulse@127.0.0.1:{stack['TEXTPULSE_PG_PORT']}/textpulse"


@pytest.fixture(scope="module")
async def seeded(stack_database_url: str, base: int) -> AsyncIterator[None]:
    """deploy/demo.py's prepare() without its live campaign: the demo organisations and their iMIS links."""
    pool = await asyncpg.create_pool(stack_database_url, min_size=1, max_size=2)
    try:
        await seed_demo(pool, TEST_SECRETS, webhook_base_url=f"http://127.0.0.1:{base + 1}")
        imis = ImisConfig()
        await pool.execute(
            """INSERT INTO imis_accounts (org_id, username, password)
               SELECT id, $1, $2 FROM organisations ON CONFLICT (org_id) DO NOTHING""",
            imis.username, imis.password)
        await seal_credentials(pool)
        yield
    finally:
        await pool.close()


@asynccontextmanager
async def _connected(url: str) -> AsyncIterator[Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def outbound(twilio: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=twilio, timeout=5) as c:
        response = await c.get("/_control/messages", params={"direction": "outbound-api"})
        response.raise_for_status()
        return response.json()["messages"]


async def segments_today(page: Page) -> int:
    await page.goto("/")
    return int((await page.locator("#stat-today .value").inner_text()).replace(",", "").strip())


async def test_a_csv_campaign_sent_now_in_the_browser_reaches_completed_and_each_member_once(
    seeded: None, base: int, page: Page, browser: Browser
) -> None:
    twilio = f"http://127.0.0.1:{base + 80}"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    assert [m for m in await outbound(twilio) if m["to"] in NUMBERS] == []

    await page.goto("/sign-in?next=/")
    await page.get_by_label("E-mail address").fill(ADMIN)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/$"))
    before = await segments_today(page)

    # Compose: a name, a text, a CSV of 5 members as the audience; save as a draft.
    await page.goto("/campaigns/new")
    name = f"Chapter update {uuid.uuid4().hex[:6]}"
    await page.get_by_label("Campaign name").fill(name)
    await page.get_by_label("Text message").fill(
        "Hi {{first_name|there}}, the chapter meets Tuesday. Reply STOP to opt out.")
    await page.get_by_text("A CSV upload").click()
    await page.get_by_label("Upload a CSV").set_input_files(
        {"name": "members.csv", "mimeType": "text/csv", "buffer": MEMBERS_CSV})
    await expect(page.locator("#upload-result")).to_contain_text(
        "5 rows accepted, 0 rejected; 5 members would be texted.")
    await expect(page.get_by_label("Expected recipients")).to_have_value("5")
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    campaign_url = page.url
    await expect(page.locator("h1 .badge")).to_have_text("Draft")

    # Send now, from the campaign page's action.
    await page.get_by_role("link", name="Schedule or send").click()
    await page.wait_for_url(re.compile(r"/edit#when-title$"))
    await page.get_by_role("radio", name="Now").check()
    await page.get_by_role("button", name="Send now").click()
    dialog = page.get_by_role("dialog", name="Send this campaign now?")
    await expect(dialog).to_contain_text("It goes to 5 members")  # the audience preview's exact count
    await expect(dialog).to_contain_text("Audience: CSV upload members.csv (5 rows).")
    await dialog.get_by_role("button", name="Send now").click()
    await page.wait_for_url(campaign_url)

    # The page follows the run by itself: Sending from the moment it is sent now, to its end; nobody
    # reloads it.
    await expect(page.locator("h1 .badge")).to_have_text("Completed", timeout=60_000)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(ARTEFACTS / "send-to-completed-campaign.png"), full_page=True)
    runs = page.get_by_role("table", name="Runs of this campaign, newest first")
    await expect(runs.locator("tbody tr")).to_have_count(1)
    await expect(runs.locator("tbody tr td").nth(3)).to_have_text("5")  # Sent

    # Each of the 5 is at the stand-in exactly once, from the organisation's default sender.
    deadline = time.monotonic() + 15
    while True:
        mine = [m for m in await outbound(twilio) if m["to"] in NUMBERS]
        if len(mine) >= 5 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert sorted(m["to"] for m in mine) == NUMBERS, mine
    assert {m["from"] for m in mine} == {SENDER}
    assert all(str(m["body"]).startswith("Hi Member") for m in mine), mine

    # Home's "segments today" counts them (the usage service may take a moment).
    deadline = time.monotonic() + 20
    while (after := await segments_today(page)) < before + 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert after >= before + 5, (before, after)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(ARTEFACTS / "send-to-completed-home.png"), full_page=True)
    assert [m for m in await outbound(twilio) if m["to"] in NUMBERS] == mine  # and nothing sent twice later


async def test_send_now_shows_sending_actions_at_once_and_a_run_that_sends_nothing_ends_not_sent(
    seeded: None, stack_database_url: str, page: Page
) -> None:
    numbers = [f"+1617555{n:04d}" for n in range(3201, 3204)]
    csv = ("Member ID,First Name,Mobile\n" + "".join(
        f"{3001 + i},Member{i},{number}\n" for i, number in enumerate(numbers))).encode()
    await page.goto("/sign-in?next=/campaigns/new")
    await page.get_by_label("E-mail address").fill(ADMIN)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/campaigns/new$"))
    await page.get_by_label("Campaign name").fill(f"Nobody left {uuid.uuid4().hex[:6]}")
    await page.get_by_label("Text message").fill("Hi {{first_name|there}}, the hall is closed. Reply STOP to opt out.")
    await page.get_by_text("A CSV upload").click()
    await page.get_by_label("Upload a CSV").set_input_files({"name": "m.csv", "mimeType": "text/csv", "buffer": csv})
    await expect(page.locator("#upload-result")).to_contain_text("3 rows accepted")
    await page.get_by_role("button", name="Save draft").click()
    await page.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]{36}$"))
    campaign_url = page.url
    campaign_id = uuid.UUID(campaign_url.rsplit("/", 1)[1])
    actions = page.get_by_role("group", name="Campaign actions")
    await expect(actions.get_by_role("button", name="Delete")).to_be_visible()
    await expect(actions.get_by_role("button", name="Cancel")).to_have_count(0)  # a draft is deleted, not cancelled

    await page.get_by_role("link", name="Schedule or send").click()
    await page.get_by_role("radio", name="Now").check()
    await page.get_by_role("button", name="Send now").click()
    conn = await asyncpg.connect(stack_database_url)
    try:
        async with page.expect_response(lambda r: r.url.endswith("/send-now")) as sent:
            await page.get_by_role("dialog", name="Send this campaign now?").get_by_role(
                "button", name="Send now").click()
        assert (await sent.value).status == 202
        # Hold the run back while the page is looked at: the scheduler skips a locked run, and the audience
        # service waits for it. Meanwhile every member opts out, so the run will have nobody to text.
        async with conn.transaction():
            run_id = await conn.fetchval("SELECT id FROM campaign_runs WHERE campaign_id = $1 FOR UPDATE", campaign_id)
            org_id = await conn.fetchval("SELECT org_id FROM campaigns WHERE id = $1", campaign_id)
            async with _connected(stack_database_url) as other:
                await other.executemany(
                    "INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'staff') "
                    "ON CONFLICT DO NOTHING", [(org_id, n) for n in numbers])
            await page.wait_for_url(campaign_url)
            await expect(page.locator("h1 .badge")).to_have_text("Sending")
            await expect(actions.get_by_role("button", name="Pause")).to_be_visible()
            await expect(actions.get_by_role("button", name="Cancel")).to_be_visible()
            for gone in ("Edit", "Reschedule or send", "Schedule or send"):
                await expect(actions.get_by_role("link", name=gone, exact=True)).to_have_count(0)
            assert await conn.fetchval("SELECT state FROM campaign_runs WHERE id = $1", run_id) == "pending"
    finally:
        await conn.close()

    # Nothing could be sent: the page follows the run to its end by itself and says why.
    await expect(page.locator("h1 .badge")).to_have_text("Not sent", timeout=60_000)
    await expect(page.locator("#run-outcome")).to_contain_text("Not sent: every member of the audience was left out")
    await expect(page.locator("#run-outcome")).to_contain_text("(all 3 members were excluded)")
    await expect(actions.get_by_role("link", name="Edit", exact=True)).to_be_visible()
    await expect(actions.get_by_role("button", name="Pause")).to_have_count(0)
    await expect(page.locator("#sending")).to_have_count(0)  # no more live refresh
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(ARTEFACTS / "send-now-not-sent.png"), full_page=True)
