"""The demo seed (``services/api/seed.py``): what it creates, that a second run changes nothing, and that its
sign-ins work and match the Twilio stand-in's account."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from harness.credentials import TEST_SECRETS
from harness.databases import create_database, drop_database
from libs.common.db import apply_migrations, create_pool
from libs.common.secret_store import API_KEY_SECRET, AUTH_TOKEN
from services.api import seed
from standins.twilio.config import default_config
from tests.integration import api_harness


@pytest.fixture
async def empty_database() -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A database of its own: the seed claims the stand-in's account SIDs, which other tests use too."""
    name = f"textpulse_seed_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    pool = await create_pool(url, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    yield pool, url
    await pool.close()
    await drop_database(name)


def test_the_seeded_account_is_the_twilio_stand_ins() -> None:
    config = default_config()
    assert (seed.STANDIN_ACCOUNT_SID, seed.STANDIN_AUTH_TOKEN) == (config.account_sid, config.auth_token)
    assert (seed.STANDIN_API_KEY_SID, seed.STANDIN_API_KEY_SECRET) == (config.api_key_sid, config.api_key_secret)
    assert (seed.STANDIN_TEST_ACCOUNT_SID, seed.STANDIN_TEST_AUTH_TOKEN) == (
        config.test_account_sid, config.test_auth_token)
    numbers = {n.phone_number for n in config.numbers if n.verification == "verified"}
    assert {"+18885550100", "+18885550101", "+18885550102"} <= numbers


async def test_seeding_twice_creates_the_demo_once(
    empty_database: tuple[asyncpg.Pool, str], kafka_bootstrap: str
) -> None:
    db_pool, database_url = empty_database
    first = await seed.seed_demo(db_pool, TEST_SECRETS, webhook_base_url="http://127.0.0.1:8001")
    counts = ("SELECT (SELECT count(*) FROM organisations), (SELECT count(*) FROM campaigns), "
              "(SELECT count(*) FROM users), (SELECT count(*) FROM usage_daily)")
    before = tuple(await db_pool.fetchrow(counts))
    second = await seed.seed_demo(db_pool, TEST_SECRETS)
    assert first == second and tuple(await db_pool.fetchrow(counts)) == before
    assert [email for email, _ in first] == ["admin@harbornurses.example.org", "staff@harbornurses.example.org",
                                             "admin@physioalumni.example.org"]

    us = await db_pool.fetchrow(
        """SELECT o.id, o.default_country_prefix, a.account_sid, a.webhook_base_url, a.test_mode, a.auth_token,
                  a.api_key_secret
           FROM organisations o JOIN sms_accounts a ON a.org_id = o.id WHERE o.slug = 'harbor-nurses'""")
    assert (us["default_country_prefix"], us["account_sid"]) == ("+1", seed.STANDIN_ACCOUNT_SID)
    assert us["auth_token"].startswith("tp1:") and us["api_key_secret"].startswith("tp1:")
    async with db_pool.acquire() as conn:
        assert await TEST_SECRETS.open(conn, us["id"], AUTH_TOKEN, us["auth_token"]) == seed.STANDIN_AUTH_TOKEN
        assert await TEST_SECRETS.open(conn, us["id"], API_KEY_SECRET, us["api_key_secret"]) == \
            seed.STANDIN_API_KEY_SECRET
    assert us["webhook_base_url"] == "http://127.0.0.1:8001" and not us["test_mode"]
    senders = await db_pool.fetch("SELECT address, is_default FROM senders WHERE org_id = $1 ORDER BY address",
                                  us["id"])
    assert [(s["address"], s["is_default"]) for s in senders] == [
        ("+18885550100", True), ("+18885550101", False), ("+18885550102", False)]
    states = {r["state"] for r in await db_pool.fetch("SELECT state FROM campaigns WHERE org_id = $1", us["id"])}
    assert states == {"draft", "scheduled", "completed", "archived"}
    uk = await db_pool.fetchrow(
        """SELECT o.default_country_prefix, o.time_zone, a.test_mode FROM organisations o
           JOIN sms_accounts a ON a.org_id = o.id WHERE o.slug = 'global-physio-alumni'""")
    assert tuple(uk) == ("+44", "Europe/London", True)

    async with api_harness.api_app(database_url, kafka_bootstrap) as app:
        async with api_harness.client_for(app, keep_cookies=True) as browser:
            email, password = first[0]
            form = await browser.get("/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            signed = await browser.post("/sign-in", data={"email": email, "password": password,
                                                          "csrf_token": token.group(1), "next": "/"})
            assert signed.status_code == 303
            home = (await browser.get("/api/v1/dashboard/home")).json()
            settings = (await browser.get("/api/v1/settings")).json()
    assert home["organisation"] == "Harbor State Nurses Association" and home["plan"]["plan"] == "Association Standard"
    assert home["usage"]["segments_this_month"] >= 0 and sum(d["segments"] for d in home["usage"]["days"]) > 0
    assert home["campaigns_by_state"]["scheduled"] == 2 and len(home["upcoming"]) == 2
    assert seed.STANDIN_AUTH_TOKEN not in str(settings) and seed.STANDIN_API_KEY_SECRET not in str(settings)
