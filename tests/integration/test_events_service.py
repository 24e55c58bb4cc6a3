"""The events service on real PostgreSQL and Kafka: a record from each stream reaches a local endpoint once,
signed; a failing endpoint is retried until it answers, and a member's later event waits for the earlier one;
a delivery past its 24 hours is failed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from harness import factories
from harness.event_receiver import receiving, register_endpoint, signed
from harness.kafka import running_publisher
from libs.common import event_signing
from libs.common.events import ConsentChanged, LinkClicked, MessageStatus, SendResult, WebhookReceived
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.settings import Settings, load_settings
from libs.common.topics import CONSENT, LINK_CLICKS, MESSAGE_STATUS, SEND_RESULTS, WEBHOOKS
from services.events.delivery import DeliveryTuning
from services.events.main import EventsTuning, build
from tests.conftest import eventually

PHONE = "+14155550134"
SENDER = "+18885550100"
FAST = EventsTuning(delivery=DeliveryTuning(poll_s=0.05, first_retry_s=0.05, max_retry_s=0.2), runs_poll_s=0.1,
                    max_retry_s=5.0)


@pytest.fixture
async def config(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> Settings:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [SEND_RESULTS, MESSAGE_STATUS, LINK_CLICKS, WEBHOOKS, CONSENT],
                        prefix=topic_prefix)
    return load_settings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix,
                         env="test")


@asynccontextmanager
async def events_service(config: Settings) -> AsyncIterator[None]:
    async with build(config, FAST) as service:
        tasks = [asyncio.create_task(w() if callable(w) else w.run()) for w in service.workers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]


async def test_an_event_from_each_stream_reaches_the_endpoint_once_signed(
    config: Settings, db_pool: asyncpg.Pool,
) -> None:
    org = await factories.make_org(db_pool)
    campaign = await factories.make_campaign(db_pool, org)
    run = await factories.make_run(db_pool, org, campaign, state="sending")
    recipient, sid = uuid.uuid4(), factories.fresh_sid()
    await db_pool.execute(
        "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, message_sid)"
        " VALUES ($1, $2, $3, $4, $5, 1, 'sent', $6)", run, recipient, org, SENDER, PHONE, sid)
    sent = SendResult(org_id=org, run_id=run, recipient_id=recipient, sender=SENDER, to=PHONE, outcome="sent",
                      message_sid=sid, segments=1)
    records = [
        (SEND_RESULTS, sent, str(run)), (SEND_RESULTS, sent, str(run)),  # redelivered: one event
        (MESSAGE_STATUS, MessageStatus(org_id=org, message_sid=sid, status="delivered"), sid),
        (MESSAGE_STATUS, MessageStatus(org_id=org, message_sid=sid, status="sending"), sid),  # not an event
        (LINK_CLICKS, LinkClicked(org_id=org, run_id=run, recipient_id=recipient, code="abcdefghijkl",
                                  agent_class="mobile"), str(run)),
        (LINK_CLICKS, LinkClicked(org_id=org, run_id=run, recipient_id=recipient, code="abcdefghijkl",
                                  agent_class="preview_bot"), str(run)),  # a bot: not a member's click
        (WEBHOOKS, WebhookReceived(kind="inbound", org_id=org, account_sid="AC" + "0" * 32, url="https://x.test/in",
                                   params={"From": PHONE, "To": SENDER, "Body": "Will renew!",
                                           "MessageSid": factories.fresh_sid()}), f"{org}:{PHONE}"),
        (CONSENT, ConsentChanged(org_id=org, phone=PHONE, action="opt_out", source="keyword"), PHONE),
        (CONSENT, ConsentChanged(org_id=org, phone=PHONE, action="opt_in", source="keyword"), PHONE),
    ]
    async with receiving() as receiver:
        await register_endpoint(db_pool, org, receiver.url)
        async with events_service(config), running_publisher(config.kafka, config.topic_prefix) as (publisher, _):
            for spec, event, key in records:
                await publisher.publish(spec, event, key=key)  # type: ignore[arg-type]
            await db_pool.execute("UPDATE campaign_runs SET state = 'completed', finished_at = now() WHERE id = $1",
                                  run)
            await eventually(lambda: len(receiver.accepted) >= 7, timeout=60)
            await asyncio.sleep(1.0)  # anything delivered twice would arrive meanwhile
    assert sorted(receiver.types()) == sorted(["sent", "delivered", "clicked", "replied", "opted_out", "opted_in",
                                               "run_completed"])
    assert len({r.event["id"] for r in receiver.accepted}) == 7
    assert all(signed(r) for r in receiver.accepted)
    forged = receiver.accepted[0]
    assert not signed(forged, secret="whsec_someone-else")
    assert not signed(forged, body=forged.body + b" ")
    by_type = {r.event["type"]: r.event for r in receiver.accepted}
    assert by_type["delivered"]["data"] == {"phone": PHONE, "message_sid": sid, "run_id": str(run),
                                            "recipient_id": str(recipient)}
    assert by_type["replied"]["data"]["body"] == "Will renew!"
    assert by_type["run_completed"]["data"]["state"] == "completed"
    assert all(r.headers[event_signing.EVENT_ID_HEADER] == r.event["id"] for r in receiver.accepted)


async def test_a_failing_endpoint_is_retried_and_a_members_later_event_waits(
    config: Settings, db_pool: asyncpg.Pool,
) -> None:
    org = await factories.make_org(db_pool)
    other = "+14155550199"
    async with receiving() as receiver:
        # The member's opt-out is refused twice; their opt-in must not overtake it. Another member is not held.
        receiver.refuse = lambda got: got.event["type"] == "opted_out" and len(receiver.refused) < 2
        endpoint = await register_endpoint(db_pool, org, receiver.url)
        async with events_service(config), running_publisher(config.kafka, config.topic_prefix) as (publisher, _):
            for phone, action in ((PHONE, "opt_out"), (PHONE, "opt_in"), (other, "opt_in")):
                await publisher.publish(CONSENT, ConsentChanged(org_id=org, phone=phone, action=action,  # type: ignore[arg-type]
                                                                source="keyword"), key=phone)
            await eventually(lambda: len(receiver.accepted) >= 3, timeout=60)
    assert len(receiver.refused) == 2
    mine = [r.event["type"] for r in receiver.accepted if r.event["data"]["phone"] == PHONE]
    assert mine == ["opted_out", "opted_in"]
    rows = await db_pool.fetch("SELECT d.attempts, d.last_status, d.delivered_at IS NOT NULL AS delivered, ev.type"
                               " FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id"
                               " WHERE d.endpoint_id = $1 AND d.member_key = $2 ORDER BY d.id", endpoint, PHONE)
    assert [(r["type"], r["attempts"], r["last_status"], r["delivered"]) for r in rows] == [
        ("opted_out", 3, 204, True), ("opted_in", 1, 204, True)]


async def test_a_delivery_past_its_24_hours_is_failed_and_frees_the_member(
    config: Settings, db_pool: asyncpg.Pool,
) -> None:
    org = await factories.make_org(db_pool)
    async with receiving() as receiver:
        receiver.refuse = lambda got: got.event["type"] == "opted_out"
        endpoint = await register_endpoint(db_pool, org, receiver.url)
        async with events_service(config), running_publisher(config.kafka, config.topic_prefix) as (publisher, _):
            opt_out = ConsentChanged(org_id=org, phone=PHONE, action="opt_out", source="keyword")
            await publisher.publish(CONSENT, opt_out, key=PHONE)
            await eventually(lambda: receiver.refused, timeout=60)
            # Its 24 hours are over: the next refusal fails it for good.
            await db_pool.execute("UPDATE webhook_deliveries SET retry_until = now() WHERE endpoint_id = $1", endpoint)
            await eventually(lambda: db_pool.fetchval(
                "SELECT failed_at IS NOT NULL FROM webhook_deliveries WHERE endpoint_id = $1", endpoint), timeout=60)
            opt_in = ConsentChanged(org_id=org, phone=PHONE, action="opt_in", source="keyword")
            await publisher.publish(CONSENT, opt_in, key=PHONE)
            await eventually(lambda: receiver.types() == ["opted_in"], timeout=60)
    failed = await db_pool.fetchrow("SELECT last_status, last_error FROM webhook_deliveries"
                                    " WHERE endpoint_id = $1 AND failed_at IS NOT NULL", endpoint)
    assert failed is not None and failed["last_status"] == 500 and failed["last_error"] == "HTTP 500"
