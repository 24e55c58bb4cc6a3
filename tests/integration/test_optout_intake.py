"""The opt-out service's intake of ``textpulse.webhooks`` (services/optout/intake.py) on the real broker and
database: a record delivered twice, or a request that reached both Kafka and the direct write, is stored and
applied once; records the database does not agree with, or that are not events, go to the DLQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from harness import factories
from harness.credentials import TEST_SECRETS
from harness.kafka import read_topic, running_publisher
from libs.common.events import WebhookReceived
from libs.common.topics import WEBHOOKS
from services.optout.db import OptoutDb
from services.optout.intake import as_webhook
from services.optout.storage import as_event, partition_key
from tests.conftest import eventually
from tests.integration.optout_harness import PUBLIC_BASE, OptoutHarness, Org, fresh_phone, running_optout


@pytest.fixture
async def optout(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool) as harness:
        yield harness


def _stop_event(optout: OptoutHarness, org: Org, phone: str, *, org_id: uuid.UUID | None = None,
                received_at: datetime | None = None) -> WebhookReceived:
    params = optout.inbound_params(org, "STOP", phone)
    return WebhookReceived(kind="inbound", org_id=org_id or org.id, account_sid=org.account_sid,
                           url=PUBLIC_BASE + "/twilio/inbound", params=params,
                           occurred_at=received_at or datetime.now(UTC))


async def _rows(optout: OptoutHarness, request_id: uuid.UUID) -> int:
    return int(await optout.fetchval("SELECT count(*) FROM webhook_requests WHERE request_id = $1", request_id))


async def _opted_out(optout: OptoutHarness, org: Org, phone: str) -> bool:
    return await optout.scopes_suppressed(org, phone) == {"", org.sender} and len(optout.events.consent(phone)) == 2


async def test_a_record_delivered_twice_is_stored_and_applied_once(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    phone = fresh_phone()
    event = _stop_event(optout, org, phone)
    value = event.model_dump_json().encode()
    async with running_publisher(kafka_bootstrap, optout.prefix) as (publisher, _):
        for _ in range(2):  # the producer retried after a lost ack, or a consumer redelivers after a crash
            await publisher.publish_raw(WEBHOOKS.full_name(optout.prefix), value, key=f"{org.id}:{phone}".encode())
    await eventually(lambda: _opted_out(optout, org, phone), timeout=30)
    await eventually(lambda: optout.settled(org), timeout=30)
    assert await _rows(optout, event.event_id) == 1
    history = await optout.fetch("SELECT scope, action FROM consent_history WHERE org_id = $1 AND phone = $2",
                                 org.id, phone)
    assert sorted((r["scope"], r["action"]) for r in history) == [("", "opt_out"), (org.sender, "opt_out")]
    assert len(optout.events.consent(phone)) == 2


async def test_a_request_written_directly_and_also_delivered_by_kafka_is_stored_once(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    """The edge's append timed out (so it wrote PostgreSQL directly) but the broker had the record after all."""
    phone = fresh_phone()
    webhook = as_webhook(_stop_event(optout, org, phone))
    async with optout.pool.acquire() as conn:
        await OptoutDb.load(TEST_SECRETS).insert_webhooks(conn, [webhook])
    async with running_publisher(kafka_bootstrap, optout.prefix) as (publisher, _):
        await publisher.publish(WEBHOOKS, as_event(webhook), key=partition_key(webhook))
        marker = _stop_event(optout, org, fresh_phone())  # behind it on no particular partition: wait for both
        await publisher.publish(WEBHOOKS, marker, key=f"{org.id}:{marker.params['From']}")
    await eventually(lambda: _rows(optout, marker.event_id), timeout=30)
    await eventually(lambda: _opted_out(optout, org, phone), timeout=30)
    await eventually(lambda: optout.settled(org), timeout=30)
    assert await _rows(optout, webhook.request_id) == 1
    assert len(optout.events.consent(phone)) == 2


async def test_records_the_database_disagrees_with_or_that_are_not_events_are_dead_lettered(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    other = await optout.new_org()
    # org's account SID, other's id (or no organisation's), received before org had the account: not a tag
    # from an account cached across a move (test_a_callback_tagged_with_the_accounts_old_owner_...).
    before_the_link = datetime.now(UTC) - timedelta(minutes=1)
    foreign = _stop_event(optout, org, fresh_phone(), org_id=other.id, received_at=before_the_link)
    orphan = _stop_event(optout, org, fresh_phone(), org_id=uuid.uuid4(), received_at=before_the_link)
    good = _stop_event(optout, org, fresh_phone())
    topic = WEBHOOKS.full_name(optout.prefix)
    async with running_publisher(kafka_bootstrap, optout.prefix) as (publisher, _):
        await publisher.publish_raw(topic, b'{"kind": "inbound", "org_id": ', key=b"poison")
        await publisher.publish_raw(topic, json.dumps({"schema_version": 1, "kind": "inbound"}).encode(), key=b"p")
        for event in (foreign, orphan, good):
            await publisher.publish(WEBHOOKS, event, key=f"{event.org_id}:{event.params['From']}")
    letters = await read_topic(kafka_bootstrap, WEBHOOKS.dlq_name(optout.prefix), expect=4, timeout=30)
    assert sorted(letter["error_code"] for letter in letters) == [
        "account_not_of_org", "account_not_of_org", "event_not_json", "schema_invalid"]
    await eventually(lambda: _opted_out(optout, org, good.params["From"]), timeout=30)
    assert await _rows(optout, foreign.event_id) == 0 and await _rows(optout, orphan.event_id) == 0
    assert await optout.scopes_suppressed(other, foreign.params["From"]) == set()
    assert optout.workers_alive()


@pytest.fixture
async def org(optout: OptoutHarness) -> Org:
    return await optout.new_org()


async def _move_account(optout: OptoutHarness, org: Org, to: Org) -> None:
    """``org``'s Twilio account becomes ``to``'s (which gives up its own), as relinking it in Settings does."""
    async with optout.pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM sms_accounts WHERE org_id = any($1::uuid[])", [org.id, to.id])
        await factories.make_sms_account(conn, to.id, account_sid=org.account_sid, auth_token=org.auth_token,
                                         webhook_base_url=PUBLIC_BASE)


async def test_a_callback_tagged_with_the_accounts_old_owner_after_it_moved_is_stored_for_the_new_owner(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    """The edge tags a webhook from its account cache (up to 5 s old): just after the account moved, with the
    old owner. The intake reads the account again and stores the request for its owner since the move; one
    received before the move is still the old owner's, which no longer has the account: dead-lettered."""
    new_owner = await optout.new_org()
    sid = await optout.add_ledger_row(new_owner, fresh_phone())  # the new owner's text, sent on the account
    params = optout.status_params(org, sid, "delivered")
    before_the_move = datetime.now(UTC) - timedelta(seconds=1)
    await _move_account(optout, org, new_owner)

    def callback(received_at: datetime) -> WebhookReceived:
        return WebhookReceived(kind="status", org_id=org.id, account_sid=org.account_sid,
                               url=PUBLIC_BASE + "/twilio/status", params=params, occurred_at=received_at)

    earlier, moved = callback(before_the_move), callback(datetime.now(UTC))
    async with running_publisher(kafka_bootstrap, optout.prefix) as (publisher, _):
        for event in (earlier, moved):  # one key: one partition, in this order
            await publisher.publish(WEBHOOKS, event, key=f"{org.id}:{sid}")

    await eventually(lambda: optout.fetchval(
        "SELECT twilio_status = 'delivered' FROM send_ledger WHERE message_sid = $1", sid), timeout=30)
    stored = await optout.fetch("SELECT request_id, org_id, outcome FROM webhook_requests WHERE request_id = any($1)",
                                [earlier.event_id, moved.event_id])
    assert [(r["request_id"], r["org_id"], r["outcome"]) for r in stored] == [(moved.event_id, new_owner.id, "applied")]
    letters = await read_topic(kafka_bootstrap, WEBHOOKS.dlq_name(optout.prefix), expect=2, timeout=5)
    assert [(letter["error_code"], json.loads(letter["value"])["event_id"]) for letter in letters] == [
        ("account_not_of_org", str(earlier.event_id))]
    assert optout.workers_alive()
