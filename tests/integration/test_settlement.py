"""The settler against the Twilio stand-in: Twilio's price, fetched from the message resource once Twilio
has it, replaces Textpulse's estimate in the actual cost; a message without a price stays provisional; the
runs API, the campaign page and Home show the same figures."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest

from harness.credentials import TEST_SECRETS, seal_credentials
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from libs.common.events import SendResult
from libs.common.twilio_sender import Account, TwilioSender
from services.usage import handlers
from services.usage.settlement import PriceSettler, SettlementTuning
from tests.conftest import eventually
from tests.integration import api_harness
from tests.integration.api_harness import signed_in

pytestmark = pytest.mark.timeout(120)

SENDER = "+18885550100"
ESTIMATE = Decimal("0.0083")  # libs/common/pricing.py: US, per segment
TWILIO_PRICE = Decimal("0.00790")  # the stand-in's price per segment, reported as "-0.00790"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(Path(tmp_path_factory.mktemp("twilio")), [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


async def _send(standin: TwilioStandin, to: str) -> str:
    """A message created at the stand-in, as the dispatcher creates it; returns its SID once Twilio prices it."""
    account = Account(standin.config.account_sid, standin.config.account_sid, standin.config.auth_token,
                      status_callback="")
    sender = TwilioSender(account, api_base_url=standin.url)
    try:
        accepted = await sender.send(sender=SENDER, to=to, body="Renewals open today")
        assert accepted.price is None  # Twilio fills the price in after sending

        async def priced() -> bool:
            fetched = await sender.fetch(accepted.sid)
            return fetched.price is not None and fetched.price_unit == "USD"
        await eventually(priced, timeout=30)
        return accepted.sid
    finally:
        await sender.aclose()


async def test_a_fetched_price_settles_the_estimate_and_every_page_agrees(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin
) -> None:
    org = await api_harness.make_org(db_pool, sender=SENDER)
    # The stand-in has one account; another module of the session may have linked it to its organisation.
    await db_pool.execute("DELETE FROM sms_accounts WHERE account_sid = $1", standin.config.account_sid)
    await db_pool.execute(
        "INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url) VALUES ($1, $2, $3, "
        "'https://hooks.example.org')", org.id, standin.config.account_sid, standin.config.auth_token)
    await seal_credentials(db_pool)
    staff = await signed_in(db_pool, client, org.id)
    campaign = await db_pool.fetchval("INSERT INTO campaigns (org_id, name, state) VALUES ($1, 'Renewals', "
                                      "'sending') RETURNING id", org.id)
    run = await db_pool.fetchval("INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted) "
                                 "VALUES ($1, $2, now(), 'sending', 2) RETURNING id", org.id, campaign)
    priced_sid = await _send(standin, "+14155550123")
    unknown_sid = "SM" + uuid.uuid4().hex  # a message Twilio has no price for (here: none at all)
    deps = handlers.UsageDeps(pool=db_pool, base_url="https://app.textpulse.test")
    for to, sid in (("+14155550123", priced_sid), ("+14155550124", unknown_sid)):
        recipient = uuid.uuid4()
        await db_pool.execute(
            "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, message_sid) "
            "VALUES ($1, $2, $3, $4, $5, 1, 'sent', $6)", run, recipient, org.id, SENDER, to, sid)
        await handlers.record_send_result(SendResult(org_id=org.id, run_id=run, recipient_id=recipient,
                                                     sender=SENDER, to=to, outcome="sent", message_sid=sid,
                                                     segments=1), deps=deps)

    async def runs_api() -> dict[str, str]:
        [figures] = (await staff.call("GET", f"/api/v1/campaigns/{campaign}/runs")).json()
        return figures
    before = await runs_api()
    assert (Decimal(before["cost"]), Decimal(before["actual_cost"]), before["cost_provisional"]) == (
        2 * ESTIMATE, 2 * ESTIMATE, True)

    settler = PriceSettler(deps, TEST_SECRETS, api_base_url=standin.url,
                           tuning=SettlementTuning(settle_after_s=0, recheck_s=3600))
    assert await settler.settle() == 1
    assert await settler.settle() == 0  # both were asked about; neither is asked again before recheck_s

    after = await runs_api()
    assert Decimal(after["cost"]) == 2 * ESTIMATE  # the estimate stays as it was
    assert Decimal(after["actual_cost"]) == TWILIO_PRICE + ESTIMATE  # one settled, one still estimated
    assert after["cost_provisional"] is True
    stored = await db_pool.fetchrow("SELECT reported_price, price_checked_at FROM usage_messages "
                                    "WHERE message_sid = $1", priced_sid)
    assert stored["reported_price"] == TWILIO_PRICE and stored["price_checked_at"] is not None

    page = (await staff.call("GET", f"/campaigns/{campaign}", **HTML)).text
    row = re.search(rf'\?run={run}#recipients-title".*?</tr>', page, re.S)
    assert row is not None
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split())
             for c in re.findall(r'<td class="num">(.*?)</td>', row.group(0), re.S)]
    assert cells[7:9] == ["$0.0166", "$0.0162 provisional: Twilio has not priced every text yet"]

    home = (await staff.call("GET", "/api/v1/dashboard/home")).json()["usage"]
    assert Decimal(home["cost_this_month"]) == 2 * ESTIMATE
    assert Decimal(home["actual_cost_this_month"]) == Decimal(after["actual_cost"])
    assert home["cost_provisional_this_month"] is True
