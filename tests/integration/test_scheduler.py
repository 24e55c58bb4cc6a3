"""The scheduler on real PostgreSQL and Kafka: each due run is published once, late ones are missed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from harness import factories
from harness.factories import make_org, make_run
from harness.kafka import records_to_end, running_publisher
from libs.common.db import create_pool
from libs.common.kafka import EventPublisher, ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE
from services.scheduler.loop import Scheduler, run_forever, tick
from tests.conftest import eventually

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def topic(kafka_bootstrap: str, topic_prefix: str) -> str:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    return CAMPAIGN_DUE.full_name(topic_prefix)


@pytest.fixture(autouse=True)
async def no_campaigns(db_pool: asyncpg.Pool) -> None:
    """The scheduler looks at every organisation's campaigns: start each test from none."""
    await db_pool.execute("DELETE FROM campaigns")


@pytest.fixture
async def scheduler(db_pool: asyncpg.Pool, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Scheduler]:
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        yield Scheduler(pool=db_pool, publisher=publisher, instance="test-a", batch=5)


async def make_campaign(
    pool: asyncpg.Pool, org_id: uuid.UUID, *, state: str = "scheduled", schedule: dict[str, Any] | None = None,
    next_occurrence_at: datetime | None = None, send_when_late: bool = False,
) -> uuid.UUID:
    return await factories.make_campaign(pool, org_id, body="Your membership renews soon", state=state,
                                         schedule=schedule or {"kind": "none"}, next_occurrence_at=next_occurrence_at,
                                         send_when_late=send_when_late)


async def read_events(bootstrap: str, topic: str) -> list[tuple[str, dict]]:
    """(key, event) for every record on ``topic``, read up to its end offsets (no waiting for more).

    The scheduler commits only after Kafka acknowledged its events, so once a tick has returned,
    everything it published is below the end offsets: a duplicate would be seen here.
    """
    return [(r.key.decode(), json.loads(r.value))
            for r in await records_to_end(bootstrap, {topic: CAMPAIGN_DUE.partitions})]


async def test_two_schedulers_publish_each_due_run_exactly_once(
    db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, topic_prefix: str, topic: str,
    scheduler: Scheduler,
) -> None:
    org = await make_org(db_pool)
    runs: set[uuid.UUID] = set()
    for i in range(30):  # one-time campaigns with a run due now (as send-now leaves them)
        campaign = await make_campaign(db_pool, org)
        runs.add(await make_run(db_pool, org, campaign, occurrence_at=NOW - timedelta(seconds=i)))
    # Daily, due a minute ago: the next occurrence is a day away, so none falls due during the test
    # (an hourly rule made one fall due when the test ran across the hour).
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    daily = {"kind": "rrule", "rrule": "FREQ=DAILY", "start": f"{due:%Y-%m-%dT%H:%M:%S}", "time_zone": "UTC"}
    for _ in range(10):  # recurring campaigns whose current occurrence has no run yet
        await make_campaign(db_pool, org, schedule=daily, next_occurrence_at=due)

    other_pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (other_publisher, _):
            other = Scheduler(pool=other_pool, publisher=other_publisher, instance="test-b", batch=5)
            loops = [asyncio.create_task(run_forever(s, interval_s=0.05)) for s in (scheduler, other)]
            try:
                await eventually(lambda: db_pool.fetchval(
                    "SELECT count(*) = 40 FROM campaign_runs WHERE published_at IS NOT NULL"), timeout=20)
            finally:
                for loop in loops:
                    loop.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
    finally:
        await other_pool.close()

    rows = await db_pool.fetch("SELECT id, campaign_id, occurrence_at, published_by FROM campaign_runs")
    events = await read_events(kafka_bootstrap, topic)
    assert len(rows) == 40 and runs <= {r["id"] for r in rows}
    assert sorted(e["run_id"] for _, e in events) == sorted(str(r["id"]) for r in rows)  # each once, no more
    assert {r["published_by"] for r in rows} == {"test-a", "test-b"}  # both took part
    by_run = {str(r["id"]): r for r in rows}
    for key, event in events:
        run = by_run[event["run_id"]]
        assert key == event["campaign_id"] == str(run["campaign_id"])  # keyed by campaign
        assert datetime.fromisoformat(event["scheduled_for"]) == run["occurrence_at"]
    assert await db_pool.fetchval("SELECT array_agg(DISTINCT state) FROM campaigns") == ["sending"]
    audited = await db_pool.fetch("SELECT run_id, count(*) FROM campaign_audit WHERE action = 'run_published' "
                                  "GROUP BY run_id")
    assert len(audited) == 40 and {a["count"] for a in audited} == {1}
    assert await db_pool.fetchval(
        "SELECT count(*) FROM campaigns WHERE next_occurrence_at = $1", due + timedelta(days=1)) == 10


async def test_a_late_run_is_missed_unless_the_campaign_sends_when_late(
    db_pool: asyncpg.Pool, kafka_bootstrap: str, topic: str, scheduler: Scheduler
) -> None:
    org = await make_org(db_pool)
    strict = await make_campaign(db_pool, org)
    relaxed = await make_campaign(db_pool, org, send_when_late=True)
    recent = await make_campaign(db_pool, org)
    missed = await make_run(db_pool, org, strict, occurrence_at=NOW - timedelta(hours=2))
    late_but_wanted = await make_run(db_pool, org, relaxed, occurrence_at=NOW - timedelta(hours=2))
    on_time = await make_run(db_pool, org, recent, occurrence_at=NOW - timedelta(minutes=59))

    report = await tick(scheduler, NOW)

    assert (report.published, report.missed) == (2, 1)
    states = dict(await db_pool.fetch("SELECT id, state FROM campaign_runs"))
    assert states == {missed: "missed", late_but_wanted: "pending", on_time: "pending"}
    reason = await db_pool.fetchval("SELECT state_reason FROM campaign_runs WHERE id = $1", missed)
    assert reason == "too_late: found 7200 s late, more than the campaign's 3600 s; not sent"
    audit = await db_pool.fetchrow("SELECT action, detail FROM campaign_audit WHERE run_id = $1", missed)
    assert audit["action"] == "run_missed" and json.loads(audit["detail"])["late_s"] == 7200
    # A missed one-time campaign reads "Not sent" (still editable: staff can reschedule or send it now),
    # rather than "Scheduled" with nothing left to send.
    assert dict(await db_pool.fetch("SELECT id, state FROM campaigns")) == {
        strict: "failed", relaxed: "sending", recent: "sending"}
    ended = await db_pool.fetchrow("SELECT actor, from_state, to_state FROM campaign_audit "
                                   "WHERE run_id = $1 AND action = 'run_ended'", missed)
    assert tuple(ended) == ("scheduler", "scheduled", "failed")
    events = await read_events(kafka_bootstrap, topic)
    assert sorted(e["run_id"] for _, e in events) == sorted([str(late_but_wanted), str(on_time)])


async def test_a_recurring_campaign_catches_up_once_per_occurrence(
    db_pool: asyncpg.Pool, kafka_bootstrap: str, topic: str, scheduler: Scheduler
) -> None:
    org = await make_org(db_pool, time_zone="Europe/London")
    start = datetime(2026, 10, 24, 22, 0)  # hourly through the night London falls back
    schedule = {"kind": "rrule", "rrule": "FREQ=HOURLY;COUNT=8", "start": start.isoformat(),
                "time_zone": "Europe/London"}
    campaign = await make_campaign(db_pool, org, schedule=schedule, next_occurrence_at=datetime(2026, 10, 24, 21,
                                                                                                tzinfo=UTC))
    down_until = datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # the scheduler was down; now it is back

    first = await tick(scheduler, down_until)
    again = await tick(scheduler, down_until)

    runs = await db_pool.fetch("SELECT occurrence_at, state FROM campaign_runs ORDER BY occurrence_at")
    # 22:00 BST, 23:00, 00:00, 01:00 BST, 02:00 GMT: the repeated 01:00 (GMT) does not go out again.
    # All but the last are more than an hour late.
    assert [(r["occurrence_at"].astimezone(UTC).hour, r["state"]) for r in runs] == [
        (21, "missed"), (22, "missed"), (23, "missed"), (0, "missed"), (2, "pending"),
    ]
    assert (first.runs_created, first.published, first.missed) == (5, 1, 4)
    assert (again.runs_created, again.published, again.missed) == (0, 0, 0)
    assert await db_pool.fetchval("SELECT next_occurrence_at FROM campaigns WHERE id = $1", campaign) == datetime(
        2026, 10, 25, 3, tzinfo=UTC)
    assert len(await read_events(kafka_bootstrap, topic)) == 1


async def test_a_paused_campaign_is_not_published_until_resumed(
    db_pool: asyncpg.Pool, kafka_bootstrap: str, topic: str, scheduler: Scheduler
) -> None:
    org = await make_org(db_pool)
    campaign = await make_campaign(db_pool, org, state="paused")
    run = await make_run(db_pool, org, campaign, occurrence_at=NOW - timedelta(minutes=5))

    assert (await tick(scheduler, NOW)).published == 0
    await db_pool.execute("UPDATE campaigns SET state = 'sending' WHERE id = $1", campaign)
    assert (await tick(scheduler, NOW)).published == 1
    assert [e["run_id"] for _, e in await read_events(kafka_bootstrap, topic)] == [str(run)]


async def test_a_publish_kafka_refuses_commits_nothing_and_is_published_once_later(
    db_pool: asyncpg.Pool, kafka_bootstrap: str, topic: str, scheduler: Scheduler
) -> None:
    org = await make_org(db_pool)
    campaign = await make_campaign(db_pool, org)
    run = await make_run(db_pool, org, campaign, occurrence_at=NOW - timedelta(minutes=1))
    # A real producer whose topic the broker does not have: the send fails as if the broker refused it.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=1000)
    await producer.start()
    try:
        refused = Scheduler(pool=db_pool, publisher=EventPublisher(producer, prefix="never-created."), instance="x")
        with pytest.raises(Exception) as failure:
            await tick(refused, NOW)
        assert type(failure.value).__module__.startswith("aiokafka")
    finally:
        await producer.stop()
    row = await db_pool.fetchrow("SELECT state, published_at FROM campaign_runs WHERE id = $1", run)
    assert (row["state"], row["published_at"]) == ("pending", None)
    assert await db_pool.fetchval("SELECT state FROM campaigns WHERE id = $1", campaign) == "scheduled"
    assert await db_pool.fetchval("SELECT count(*) FROM campaign_audit WHERE campaign_id = $1", campaign) == 0

    assert (await tick(scheduler, NOW)).published == 1
    events = await read_events(kafka_bootstrap, topic)
    assert [e["run_id"] for _, e in events] == [str(run)]
    assert events[0][1]["event_id"] == str(uuid.uuid5(uuid.UUID("5f0c7a51-7a0e-4c0c-9d0e-6a1f3b2c9d10"), str(run)))
