"""Send-results, statuses and opt-outs on the real broker into the usage rollups: once each, whatever the
redelivery; poison to the DLQ; allowance and opted-out alerts raised once."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from harness.factories import fresh_sid
from harness.kafka import delete_topics_with_prefix, new_prefix, read_topic, running_publisher
from libs.common.events import ConsentChanged, MessageStatus, SendResult
from libs.common.kafka import EventPublisher, ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.runtime import run_worker
from libs.common.settings import load_settings
from libs.common.topics import CONSENT, MESSAGE_STATUS, SEND_RESULTS
from services.usage.conditions import OptedOutRule
from services.usage.mailer import MailerTuning
from services.usage.main import UsageTuning, build
from services.usage.watcher import WatcherTuning
from tests.conftest import eventually
from tests.integration.usage_harness import Org, consumer_caught_up, seed_org, seed_run

pytestmark = pytest.mark.timeout(60)

SENDER = "+18885550100"
TOPICS = [SEND_RESULTS, MESSAGE_STATUS, CONSENT]
TUNING = UsageTuning(watcher=WatcherTuning(poll_s=0.5), mailer=MailerTuning(poll_s=0.5, retry_base_s=60),
                     opted_out_rule=OptedOutRule(min_count=3, min_share=0.5), max_retry_s=5)


@dataclass
class Usage:
    pool: asyncpg.Pool
    publisher: EventPublisher
    bootstrap: str
    prefix: str

    async def results(self, *events: SendResult) -> None:
        """Publish send-results as the dispatcher does: after writing their outcomes to the send ledger."""
        for event in events:
            await self.ledger(event)
            await self.publisher.publish(SEND_RESULTS, event, key=str(event.run_id))

    async def ledger(self, event: SendResult) -> None:
        """The dispatcher's ledger row for ``event``, under its run's organisation (none for an unknown run)."""
        await self.pool.execute(
            """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, message_sid)
               SELECT r.id, $2, r.org_id, $3, $4, $5, $6, $7 FROM campaign_runs r WHERE r.id = $1
               ON CONFLICT DO NOTHING""",
            event.run_id, event.recipient_id, event.sender, event.to, event.segments, event.outcome,
            event.message_sid)

    async def statuses(self, *events: MessageStatus) -> None:
        for event in events:
            await self.publisher.publish(MESSAGE_STATUS, event, key=event.message_sid)

    async def settled(self) -> None:
        await eventually(lambda: consumer_caught_up(self.bootstrap, f"{self.prefix}usage", TOPICS, self.prefix),
                         timeout=30, interval=0.2)

    async def row(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def run_usage(self, run_id: uuid.UUID) -> dict[str, Any]:
        row = await self.row("SELECT * FROM usage_runs WHERE run_id = $1", run_id)
        return dict(row) if row else {}

    async def errors(self, run_id: uuid.UUID) -> dict[int, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT error_code, messages FROM usage_run_errors WHERE run_id = $1 "
                                    "AND messages <> 0", run_id)
        return {r["error_code"]: r["messages"] for r in rows}

    async def alerts(self, org: Org) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch("SELECT * FROM alerts WHERE org_id = $1 ORDER BY id", org.id)


@pytest.fixture(scope="module")
async def usage(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[Usage]:
    prefix = new_prefix()
    await ensure_topics(KafkaAccess(kafka_bootstrap), TOPICS, prefix=prefix)
    settings = load_settings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                             public_base_url="https://app.textpulse.test", smtp_port=9)
    async with build(settings, TUNING) as service, running_publisher(kafka_bootstrap, prefix) as (publisher, _):
        tasks = [asyncio.create_task(run_worker(worker)) for worker in service.workers]
        try:
            yield Usage(db_pool, publisher, kafka_bootstrap, prefix)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
    crashed = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    assert not crashed, crashed
    await delete_topics_with_prefix(kafka_bootstrap, prefix)


def result(org: Org, run_id: uuid.UUID, outcome: str = "sent", *, to: str = "+14155550100", segments: int = 1,
           sid: str | None = None, code: int | None = None) -> SendResult:
    if outcome == "sent" and sid is None:
        sid = fresh_sid()
    return SendResult(org_id=org.id, run_id=run_id, recipient_id=uuid.uuid4(), sender=SENDER, to=to,
                      outcome=outcome, message_sid=sid, error_code=code, segments=segments if outcome == "sent" else 0)


def status(org: Org, sid: str | None, value: str, code: int | None = None, price: str | None = None) -> MessageStatus:
    assert sid is not None
    return MessageStatus(org_id=org.id, message_sid=sid, status=value, error_code=code,
                         price=Decimal(price) if price else None)


async def test_results_and_statuses_are_counted_once_whatever_is_redelivered(usage: Usage) -> None:
    org = await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    delivered = result(org, run_id, segments=2)
    failed = result(org, run_id)
    undelivered = result(org, run_id, segments=3)
    blocked = result(org, run_id, to="+447700900123")  # GB, blocked by pumping protection: no fee
    results = [delivered, failed, undelivered, blocked, result(org, run_id, "failed", code=21211),
               result(org, run_id, "suppressed"), result(org, run_id, "suppressed", code=21610)]
    statuses = [status(org, delivered.message_sid, "sent"), status(org, delivered.message_sid, "delivered",
                                                                   price="-0.01580"),
                status(org, failed.message_sid, "failed", 30007), status(org, undelivered.message_sid, "undelivered",
                                                                         30003),
                status(org, blocked.message_sid, "failed", 30450)]

    await usage.results(*results)
    await usage.statuses(*statuses)
    # Redelivery: the same records again, the dispatcher's republished results (new event ids), and a
    # status that arrives late and ranks lower than the one already applied.
    await usage.results(*results, *[r.model_copy(update={"event_id": uuid.uuid4()}) for r in results])
    await usage.statuses(*statuses, status(org, delivered.message_sid, "queued"))
    await usage.settled()

    totals = await usage.run_usage(run_id)
    assert {k: totals[k] for k in ("messages", "segments", "delivered", "undelivered", "failed", "dropped",
                                   "opted_out_failures", "unpriced_segments")} == {
        "messages": 4, "segments": 7, "delivered": 1, "undelivered": 1, "failed": 4, "dropped": 1,
        "opted_out_failures": 1, "unpriced_segments": 0}
    # Charged: the delivered (2 x 0.0083) and the undelivered (3 x 0.0083) messages; the 30007 failure pays
    # the $0.001 fee, the 30450 one does not.
    assert totals["segment_cost"] == Decimal("0.04150") and totals["failed_fees"] == Decimal("0.00100")
    assert totals["cost"] == Decimal("0.04250") and totals["reported_cost"] == Decimal("0.01580")
    assert totals["pumping_fees"] == 0
    assert await usage.errors(run_id) == {30007: 1, 30003: 1, 30450: 1, 21211: 1, 21610: 1}
    day = await usage.row("SELECT d.*, (now() AT TIME ZONE o.time_zone)::date AS today FROM usage_daily d "
                          "JOIN organisations o ON o.id = d.org_id WHERE d.org_id = $1", org.id)
    assert day is not None and day["day"] == day["today"] and not day["test"]
    assert (day["messages"], day["segments"], day["failed"], day["cost"]) == (4, 7, 4, Decimal("0.04250"))


async def test_a_status_that_beats_its_send_result_is_held_then_applied(usage: Usage) -> None:
    org = await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    sent = result(org, run_id, segments=2)
    await usage.statuses(status(org, sent.message_sid, "failed", 30007))
    await eventually(lambda: usage.row("SELECT 1 FROM usage_pending_statuses WHERE message_sid = $1",
                                       sent.message_sid))
    await usage.results(sent)
    totals = await eventually(lambda: _when(usage.run_usage(run_id), lambda t: t.get("failed") == 1))
    assert (totals["segment_cost"], totals["failed_fees"]) == (0, Decimal("0.00100"))
    assert await usage.row("SELECT 1 FROM usage_pending_statuses WHERE message_sid = $1", sent.message_sid) is None


async def test_a_held_status_naming_another_organisation_is_dropped_when_the_message_arrives(usage: Usage) -> None:
    org, stranger = await seed_org(usage.pool), await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    sent = result(org, run_id, segments=2)
    await usage.statuses(status(stranger, sent.message_sid, "failed", 30007))  # forged: another org, same SID
    await eventually(lambda: usage.row("SELECT 1 FROM usage_pending_statuses WHERE message_sid = $1",
                                       sent.message_sid))
    await usage.results(sent)
    totals = await eventually(lambda: _when(usage.run_usage(run_id), lambda t: t.get("messages") == 1))
    assert (totals["failed"], totals["failed_fees"]) == (0, 0)
    assert await usage.row("SELECT 1 FROM usage_pending_statuses WHERE message_sid = $1", sent.message_sid) is None


async def test_poisoned_events_go_to_the_dlq_and_the_next_one_is_counted(usage: Usage) -> None:
    org = await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    topic = SEND_RESULTS.full_name(usage.prefix)
    unknown_run = result(org, uuid.uuid4())
    other_org = result(org, run_id).model_copy(update={"org_id": uuid.uuid4()})
    await usage.publisher.publish_raw(topic, b"{not json", key=str(run_id).encode())
    await usage.results(unknown_run, other_org, good := result(org, run_id))

    totals = await eventually(lambda: _when(usage.run_usage(run_id), lambda t: t.get("messages") == 1))
    assert totals["segments"] == good.segments
    letters = await read_topic(usage.bootstrap, SEND_RESULTS.dlq_name(usage.prefix), expect=3)
    assert [d["error_code"] for d in letters] == ["event_not_json", "run_unknown", "org_mismatch"]
    assert letters[0]["value"] == "{not json" and letters[1]["topic"] == topic


async def test_a_send_result_the_ledger_does_not_hold_is_dead_lettered_and_counts_nothing(usage: Usage) -> None:
    org = await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    genuine = result(org, run_id)
    await usage.ledger(genuine)
    forged = [result(org, run_id),  # a recipient the dispatcher never sent to
              genuine.model_copy(update={"message_sid": fresh_sid(), "event_id": uuid.uuid4()}),  # another SID
              genuine.model_copy(update={"outcome": "failed", "message_sid": None, "event_id": uuid.uuid4()})]
    for event in forged:  # straight onto the topic: no ledger row of their own
        await usage.publisher.publish(SEND_RESULTS, event, key=str(event.run_id))
    await usage.results(genuine)

    totals = await eventually(lambda: _when(usage.run_usage(run_id), lambda t: t.get("messages") == 1))
    letters = await read_topic(usage.bootstrap, SEND_RESULTS.dlq_name(usage.prefix), expect=len(forged) + 3)
    codes = {json.loads(d["value"])["event_id"]: d["error_code"] for d in letters if "event_id" in d["value"]}
    assert [codes.get(str(event.event_id)) for event in forged] == ["ledger_mismatch"] * 3
    await usage.settled()
    assert (await usage.run_usage(run_id))["messages"] == totals["messages"] == 1


async def test_the_allowance_alerts_at_80_and_100_percent_once_each(usage: Usage) -> None:
    org = await seed_org(usage.pool, allowance=10)
    run_id = await seed_run(usage.pool, org)
    first = [result(org, run_id, segments=2) for _ in range(4)]
    await usage.results(*first)
    await eventually(lambda: _when(usage.alerts(org), lambda a: len(a) == 1))
    await usage.results(*first, more := result(org, run_id, segments=2))
    await usage.results(more.model_copy(update={"event_id": uuid.uuid4()}))
    await usage.settled()

    alerts = await usage.alerts(org)
    assert [a["kind"] for a in alerts] == ["usage_80", "usage_100"]
    months = {a["dedupe_key"].split(":")[1] for a in alerts}  # once a month each: the month is in the key
    assert len(months) == 1 and re.fullmatch(r"\d{4}-\d{2}", months.pop())
    assert "8 segments" in alerts[0]["body_text"] and "10 segments" in alerts[1]["body_text"]
    assert alerts[0]["state"] == "skipped"  # the organisation has no alert addresses: listed, not sent


async def test_a_test_mode_organisation_is_counted_apart_and_never_alerts_its_allowance(usage: Usage) -> None:
    org = await seed_org(usage.pool, allowance=1, test_mode=True)
    run_id = await seed_run(usage.pool, org)
    await usage.results(result(org, run_id, segments=3))
    await usage.settled()
    day = await usage.row("SELECT test, segments FROM usage_daily WHERE org_id = $1", org.id)
    assert day is not None and tuple(day) == (True, 3)
    assert (await usage.run_usage(run_id))["test"] is True
    assert await usage.alerts(org) == []


async def test_failures_to_opted_out_numbers_alert_once_per_run(usage: Usage) -> None:
    org = await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    refused = [result(org, run_id, "suppressed", code=21610) for _ in range(3)]
    await usage.results(*refused[:2])
    await usage.settled()
    assert await usage.alerts(org) == []  # two are below the rule's minimum
    await usage.results(refused[2], result(org, run_id, "suppressed", code=21610))
    await usage.settled()
    alerts = await usage.alerts(org)
    assert [a["kind"] for a in alerts] == ["opted_out_failures"]
    assert alerts[0]["run_id"] == run_id and "3 messages went to numbers that had opted out" in alerts[0]["subject"]


async def test_a_stop_in_reply_to_a_run_counts_once_as_an_opt_out_it_caused(usage: Usage) -> None:
    org = await seed_org(usage.pool)
    run_id = await seed_run(usage.pool, org)
    inbound_sid, recipient_id, phone = fresh_sid(), uuid.uuid4(), "+14155550177"
    async with usage.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, keyword, "
            "run_id, recipient_id, received_at) VALUES ($1, $2, $3, $3, $4, 'STOP', 'opt_out', 'STOP', $5, $6, now())",
            org.id, inbound_sid, phone, SENDER, run_id, recipient_id)
    # One STOP changes consent in two scopes (organisation-wide and the sender): two events, one opt-out.
    events = [ConsentChanged(org_id=org.id, phone=phone, sender=scope, action="opt_out", source="keyword",
                             message_sid=inbound_sid) for scope in (None, SENDER)]
    events.append(ConsentChanged(org_id=org.id, phone="+14155550178", action="opt_out", source="keyword",
                                 message_sid=fresh_sid()))  # a STOP that answers no campaign text
    # Forged: another number's opt-out pointing at this STOP, another organisation naming it, and an
    # opt-out pointing at a HELP reply of another recipient of the run.
    help_sid = fresh_sid()
    await usage.pool.execute(
        "INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, keyword, "
        "run_id, recipient_id, received_at) VALUES ($1, $2, $3, $3, $4, 'HELP', 'help', 'HELP', $5, $6, now())",
        org.id, help_sid, "+14155550179", SENDER, run_id, uuid.uuid4())
    other = await seed_org(usage.pool)
    events += [ConsentChanged(org_id=org.id, phone="+14155550180", action="opt_out", source="keyword",
                              message_sid=inbound_sid),
               ConsentChanged(org_id=other.id, phone=phone, action="opt_out", source="keyword",
                              message_sid=inbound_sid),
               ConsentChanged(org_id=org.id, phone="+14155550179", action="opt_out", source="keyword",
                              message_sid=help_sid)]
    for event in [*events, *events]:
        await usage.publisher.publish(CONSENT, event, key=event.phone)
    await usage.settled()
    assert (await usage.run_usage(run_id))["opt_outs"] == 1
    day = await usage.row("SELECT opt_outs FROM usage_daily WHERE org_id = $1", org.id)
    assert day is not None and day["opt_outs"] == 1


async def _when(value: Any, check: Any) -> Any:
    resolved = await value
    return resolved if check(resolved) else None
