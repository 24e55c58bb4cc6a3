"""The dispatcher's Twilio credentials (services/dispatcher/accounts.py) against the real database and the
Twilio stand-in: a token changed or revoked in the database is used by the first send after the TTL, and a
send Twilio refuses logs nothing of the token. The clock is injected: no test waits on wall time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from harness import factories
from harness.credentials import TEST_SECRETS, seal
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from libs.common.secret_store import AUTH_TOKEN
from libs.common.twilio_errors import SendFailure
from libs.common.twilio_sender import TwilioSender
from services.dispatcher.accounts import TwilioAccounts
from services.dispatcher.db import DispatchStore
from tests.integration import api_harness

# The twilio SDK's aiohttp client (the dispatcher's) still passes aiohttp.BasicAuth, which warns on every call.
pytestmark = [pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")]

SENDER = "+18885550100"
WRONG_TOKEN = "a-revoked-token-0000000000000000"


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def org_on_standin(pool: asyncpg.Pool, standin: TwilioStandin, token: str) -> uuid.UUID:
    """An organisation on the stand-in's account (earlier tests' organisations give it up), auth token only."""
    org = await api_harness.make_org(pool, sender=SENDER)
    await factories.make_standin_account(pool, org.id, standin.config, auth_token=token, with_api_key=False)
    return org.id


async def set_token(pool: asyncpg.Pool, org_id: uuid.UUID, token: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE sms_accounts SET auth_token = $2 WHERE org_id = $1",
                           org_id, await seal(conn, org_id, AUTH_TOKEN, token))


async def send(sender: TwilioSender) -> str:
    return (await sender.send(sender=SENDER, to=f"+1415555{uuid.uuid4().int % 10**4:04d}", body="Hello",
                              validity_period_s=3600)).sid


async def test_a_changed_or_revoked_token_is_used_by_the_first_send_after_the_ttl(
    db_pool: asyncpg.Pool, standin: TwilioStandin
) -> None:
    org_id = await org_on_standin(db_pool, standin, WRONG_TOKEN)
    clock = Clock()
    accounts = TwilioAccounts(DispatchStore(db_pool), TEST_SECRETS, api_base_url=standin.url, ttl_s=5.0, clock=clock)
    try:
        with pytest.raises(SendFailure) as refused:
            await send(await accounts.for_org(org_id))
        assert refused.value.twilio_code == 20003

        await set_token(db_pool, org_id, standin.config.auth_token)  # fixed in Settings
        clock.now += 4.9
        with pytest.raises(SendFailure):  # still inside the TTL: the credentials read before
            await send(await accounts.for_org(org_id))
        clock.now += 0.2
        assert (await send(await accounts.for_org(org_id))).startswith("SM")

        await set_token(db_pool, org_id, WRONG_TOKEN)  # revoked
        clock.now += 5.0
        with pytest.raises(SendFailure) as revoked:
            await send(await accounts.for_org(org_id))
        assert revoked.value.twilio_code == 20003
    finally:
        await accounts.aclose()


async def test_an_unchanged_account_keeps_its_client_and_a_removed_one_is_refused(
    db_pool: asyncpg.Pool, standin: TwilioStandin
) -> None:
    org_id = await org_on_standin(db_pool, standin, standin.config.auth_token)
    clock = Clock()
    accounts = TwilioAccounts(DispatchStore(db_pool), TEST_SECRETS, api_base_url=standin.url, ttl_s=5.0, clock=clock)
    try:
        first = await accounts.for_org(org_id)
        clock.now += 6
        assert await accounts.for_org(org_id) is first  # re-read, same credentials: the same connection pool
        await db_pool.execute("DELETE FROM sms_accounts WHERE org_id = $1", org_id)
        clock.now += 6
        with pytest.raises(Exception, match="has no Twilio account") as missing:
            await accounts.for_org(org_id)
        assert getattr(missing.value, "code", None) == "twilio_account_missing"
    finally:
        await accounts.aclose()


async def test_a_send_twilio_refuses_logs_nothing_of_the_token(
    db_pool: asyncpg.Pool, standin: TwilioStandin, caplog: pytest.LogCaptureFixture
) -> None:
    org_id = await org_on_standin(db_pool, standin, WRONG_TOKEN)
    accounts = TwilioAccounts(DispatchStore(db_pool), TEST_SECRETS, api_base_url=standin.url)
    caplog.set_level(logging.DEBUG)  # the twilio SDK logs every request and its headers at INFO
    try:
        sender = await accounts.for_org(org_id)
        with pytest.raises(SendFailure) as refused:
            await send(sender)
    finally:
        await accounts.aclose()
    assert any(r.name.startswith("twilio") for r in caplog.records)  # the capture saw the SDK's own lines
    for text in (caplog.text, str(refused.value), repr(refused.value), repr(sender._account)):
        assert WRONG_TOKEN not in text
