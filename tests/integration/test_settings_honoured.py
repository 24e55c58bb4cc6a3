"""Issue 24's last gap: each Settings value, changed through the API as the Settings page changes it, is
honoured by a send. The texts go through ``POST /api/v1/campaigns/{id}/test-send`` to the Twilio stand-in
(its own process) and alerts through a real local SMTP server.

Proven elsewhere, not repeated here:
- maximum segments and the per-campaign segment limit refusing a run whose audience needs more:
  tests/integration/test_audience_service.py::test_a_run_over_its_segment_limit_publishes_nothing (the
  audience service reads both columns, which the Settings page writes: tests/browser/test_settings_parity.py);
- the organisation's limit refusing a campaign that asks for more:
  tests/integration/test_campaigns_api.py::test_the_organisations_segment_limit_is_a_ceiling_for_every_campaign
  (here only the same refusal after the limit is changed in Settings);
- the default prefix reading members' numbers: tests/integration/test_audience_service.py (CSV and list
  audiences), tests/unit/test_csv_source.py;
- a linked test account being accepted:
  tests/integration/test_api_settings.py::test_twilio_test_credentials_can_be_linked.

Not honoured yet, so not tested: the alphanumeric sender ID. It is stored and validated, but neither the
dispatcher nor a test send uses it as From, and the Twilio stand-in accepts no alphanumeric From.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from harness import factories
from harness.dispatch import TwilioStandin
from harness.processes import free_port, wait_http
from services.usage.mailer import AlertMailer
from services.usage.watcher import AlertWatcher, WatcherTuning
from standins.twilio.config import derived_sid
from standins.twilio.validation import MAGIC_FROM_OK
from tests.conftest import eventually
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem
from tests.integration.test_alerts_smtp import FAST, SmtpServer, config

pytestmark = pytest.mark.timeout(90)

TOLL_FREE = "+18885550100"
IN_SERVICE = "+18885550101"  # the only number of the stand-in's Messaging Service "Textpulse"
TEST_SEND = "/api/v1/campaigns/{}/test-send"
SETTINGS = "/api/v1/settings"


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    numbers = [{"phone_number": TOLL_FREE}, {"phone_number": IN_SERVICE, "service": "Textpulse"}]
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [], extra_config={"numbers": numbers})
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str, standin: TwilioStandin) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap, twilio_api_base_url=standin.url) as built:
        yield built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.client_for(app) as c:
        yield c


def service_sid(standin: TwilioStandin) -> str:
    return derived_sid("MG", standin.config.account_sid, "Textpulse")


async def linked_admin(pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin, *,
                       sender: str = TOLL_FREE) -> tuple[Caller, uuid.UUID]:
    """An admin of an organisation on the stand-in's account, and a draft campaign that names no sender."""
    org = await api_harness.make_org(pool, sender=sender)
    await factories.make_standin_account(pool, org.id, standin.config)
    campaign_id = await factories.make_campaign(pool, org.id, name="AGM", body="The AGM is on Friday.",
                                                state="draft")
    return await api_harness.signed_in(pool, client, org.id, role="admin"), campaign_id


async def listed(pool: asyncpg.Pool, org_id: uuid.UUID, *numbers: str) -> None:
    for number in numbers:
        await pool.execute("INSERT INTO staff_test_numbers (org_id, phone, label, added_by) "
                           "VALUES ($1, $2, 'Staff phone', 'test') ON CONFLICT DO NOTHING", org_id, number)


async def arrived(standin: TwilioStandin, to: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=standin.url) as c:
        data = (await c.get("/_control/messages", params={"to": to, "direction": "outbound-api"})).json()
    return list(data["messages"])


def changed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def unique(prefix: str, digits: int) -> str:
    return f"{prefix}{uuid.uuid4().int % 10**digits:0{digits}d}"


async def test_the_default_prefix_set_in_settings_reads_a_local_number_and_plus_keeps_its_country(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    admin, campaign_id = await linked_admin(db_pool, client, standin)
    british, american = unique("+4477001", 5), unique("+1617555", 4)
    await listed(db_pool, admin.org_id, british, american)
    local = "0" + british[3:]  # 07700 1xxxxx, as a member of a British association writes it

    changed(await admin.call("PATCH", f"{SETTINGS}/country", {"default_country_prefix": "+44"}))
    sent = changed(await admin.call("POST", TEST_SEND.format(campaign_id), {"to": [local, american]}))

    assert [r["to"] for r in sent["results"]] == [british, american]
    assert [m["to"] for m in await arrived(standin, british)] == [british]
    assert [m["to"] for m in await arrived(standin, american)] == [american]  # "+1..." stays American


async def test_the_default_send_from_is_used_when_the_campaign_names_none(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    admin, campaign_id = await linked_admin(db_pool, client, standin)
    toll_free_id = await db_pool.fetchval("SELECT id FROM senders WHERE org_id = $1", admin.org_id)
    service_id = await factories.make_sender(db_pool, admin.org_id, service_sid(standin), kind="messaging_service")
    via_service, via_number = unique("+1617556", 4), unique("+1617557", 4)
    await listed(db_pool, admin.org_id, via_service, via_number)

    changed(await admin.call("PATCH", f"{SETTINGS}/general", {"default_sender_id": str(service_id)}))
    first = changed(await admin.call("POST", TEST_SEND.format(campaign_id), {"to": [via_service]}))
    changed(await admin.call("PATCH", f"{SETTINGS}/general", {"default_sender_id": str(toll_free_id)}))
    second = changed(await admin.call("POST", TEST_SEND.format(campaign_id), {"to": [via_number]}))

    assert (first["sender"], second["sender"]) == (service_sid(standin), TOLL_FREE)
    [pooled] = await arrived(standin, via_service)
    [direct] = await arrived(standin, via_number)
    # With MessagingServiceSid and no From, Twilio (here the stand-in) picks the service's number.
    assert pooled["messaging_service_sid"] == service_sid(standin)
    assert pooled["from"] in (None, IN_SERVICE)
    assert (direct["messaging_service_sid"], direct["from"]) == (None, TOLL_FREE)


async def test_test_api_mode_sends_through_the_test_credentials_and_counts_as_test_usage(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    org = await api_harness.make_org(db_pool, sender=MAGIC_FROM_OK)  # the one From test credentials accept
    admin = await api_harness.signed_in(db_pool, client, org.id, role="admin")
    campaign_id = await factories.make_campaign(db_pool, org.id, name="AGM", body="The AGM is on Friday.",
                                                state="draft")
    to = unique("+1617558", 4)
    await listed(db_pool, org.id, to)
    test_sid, test_token = standin.config.test_account_sid, standin.config.test_auth_token
    await db_pool.execute("DELETE FROM sms_accounts WHERE account_sid = $1", test_sid)  # earlier tests' orgs

    changed(await admin.call("PUT", f"{SETTINGS}/sms-account/credentials",
                             {"account_sid": test_sid, "auth_token": test_token}))
    account = changed(await admin.call("PATCH", f"{SETTINGS}/sms-account", {"test_mode": True}))["sms_account"]
    sent = changed(await admin.call("POST", TEST_SEND.format(campaign_id), {"to": [to]}))

    assert (account["account_sid"], account["test_mode"]) == (test_sid, True)
    [result] = sent["results"]
    assert result["message_sid"].startswith("SM")
    assert await arrived(standin, to) == []  # test credentials: a well-formed answer, nothing stored or sent
    usage = await db_pool.fetch("SELECT test, messages FROM usage_daily WHERE org_id = $1", org.id)
    assert [tuple(u) for u in usage] == [(True, 1)]


async def test_limits_changed_in_settings_bound_the_next_campaign(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, standin: TwilioStandin,
) -> None:
    admin, _ = await linked_admin(db_pool, client, standin)

    changed(await admin.call("PATCH", f"{SETTINGS}/general", {"campaign_segment_limit": 5_000}))
    refused = problem(await admin.call("POST", "/api/v1/campaigns", {"name": "Everyone", "segment_limit": 6_000}),
                      422, "segment_limit_over_organisation")
    changed(await admin.call("PATCH", f"{SETTINGS}/sms-account", {"max_segments": 4_000}))
    draft = await admin.call("POST", "/api/v1/campaigns", {"name": "Everyone", "segment_limit": 5_000})

    assert "over the organisation's limit of 5,000 segments" in refused["errors"][0]["message"]
    assert draft.status_code == 201, draft.text
    assert (draft.json()["segment_limit"], draft.json()["effective_segment_limit"]) == (5_000, 4_000)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def mailer(smtp: SmtpServer, db_pool: asyncpg.Pool) -> AsyncIterator[AlertMailer]:
    worker = AlertMailer(db_pool, config(smtp.port), tuning=FAST)
    task = asyncio.create_task(worker.run())
    yield worker
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_alerts_go_to_the_addresses_set_in_settings(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, smtp: SmtpServer, mailer: AlertMailer,
) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await api_harness.signed_in(db_pool, client, org.id, role="admin")
    tag = uuid.uuid4().hex[:8]
    ops, board = f"ops-{tag}@acme.test", f"board-{tag}@acme.test"

    changed(await admin.call("PATCH", f"{SETTINGS}/general", {"alert_emails": [ops, board.upper()]}))
    await db_pool.execute("INSERT INTO webhook_signature_refusals (org_id, minute, refusals, last_url) "
                          "VALUES ($1, date_trunc('minute', now()), 25, 'https://sms.acme.test/twilio/inbound')",
                          org.id)
    await AlertWatcher(db_pool, base_url="https://app.textpulse.test", tuning=WatcherTuning()).check_signatures()

    await eventually(lambda: smtp.inbox.to(ops))
    [mail] = smtp.inbox.to(ops)
    assert sorted(mail.envelope_to) == sorted([ops, board])
