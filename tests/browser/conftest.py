"""Browser tests: the API app served by uvicorn in this process, driven by Debian's chromium.

Playwright's own browser downloads are not used (and not allowed): ``apt-get install -y chromium``
provides ``/usr/bin/chromium``. Each test gets a fresh browser context (no cookies), on one browser
and one server per module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.integration.api_harness import serving_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-artefacts"  # ignored by git
SCREENSHOTS.mkdir(parents=True, exist_ok=True)

if not CHROMIUM.exists():  # a missing browser is a broken set-up, not a reason to pass quietly
    raise RuntimeError("chromium is not installed: `make test` installs it (deploy/local/bootstrap.sh)")


@pytest.fixture(scope="module")
async def base_url(database_url: str, kafka_bootstrap: str) -> AsyncIterator[str]:
    async with serving_api(database_url, kafka_bootstrap) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, base_url: str) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=base_url, viewport={"width": 1440, "height": 900}, locale="en-US",
                                    timezone_id="America/New_York")
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    # A script error or a refused resource (CSP) shows in the console: the page must have none.
    assert not [e for e in errors if "status of 4" not in e], errors
