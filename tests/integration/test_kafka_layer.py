"""The consumer layer on the real broker: poison goes to the DLQ, good events keep flowing."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace

import asyncpg
import pytest

from harness.kafka import read_topic, running_consumer, running_publisher
from libs.common.errors import ConfigurationError, PermanentError, RetryableError
from libs.common.events import CampaignDue
from libs.common.kafka import EventConsumer, ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import ALL_TOPICS, CAMPAIGN_DUE
from tests.conftest import eventually


def _due(**changes: object) -> CampaignDue:
    fields = dict(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(),
                  scheduled_for="2026-11-26T09:00:00Z")
    fields.update(changes)
    return CampaignDue(**fields)


async def test_ensure_topics_twice_leaves_the_same_topics(kafka_bootstrap: str, topic_prefix: str) -> None:
    first = await ensure_topics(KafkaAccess(kafka_bootstrap), ALL_TOPICS, prefix=topic_prefix)
    second = await ensure_topics(KafkaAccess(kafka_bootstrap), ALL_TOPICS, prefix=topic_prefix)
    assert first == second
    assert first[f"{topic_prefix}textpulse.recipients"] == 12
    assert first[f"{topic_prefix}textpulse.recipients.dlq"] == 1
    assert len(first) == 2 * len(ALL_TOPICS)


async def test_a_partition_count_that_differs_is_refused(kafka_bootstrap: str, topic_prefix: str) -> None:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    with pytest.raises(ConfigurationError, match="has 6 partitions, expected 9"):
        await ensure_topics(KafkaAccess(kafka_bootstrap), [replace(CAMPAIGN_DUE, partitions=9)], prefix=topic_prefix)


async def test_poisoned_events_go_to_the_dlq_and_the_next_good_event_is_handled(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    topic = CAMPAIGN_DUE.full_name(topic_prefix)
    handled: list[CampaignDue] = []
    crash_run, refuse_run = uuid.uuid4(), uuid.uuid4()

    async def handle(event: CampaignDue) -> None:
        if event.run_id == crash_run:
            raise ZeroDivisionError("handler bug")
        if event.run_id == refuse_run:
            raise PermanentError("campaign_missing", "no such campaign")
        handled.append(event)

    good = _due()
    missing_field = json.loads(_due().model_dump_json())
    del missing_field["run_id"]
    poison = [
        b"this is not json",
        json.dumps(json.loads(_due().model_dump_json()) | {"schema_version": 99}).encode(),
        json.dumps(missing_field).encode(),
        _due(run_id=crash_run).model_dump_json().encode(),
        _due(run_id=refuse_run).model_dump_json().encode(),
    ]
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        for value in poison:
            await publisher.publish_raw(topic, value, key=b"k")  # all on one partition, before the good one
        await publisher.publish(CAMPAIGN_DUE, good, key="k")
        consumer = EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=f"{topic_prefix}g",
                                 handlers={CAMPAIGN_DUE: handle}, publisher=publisher, prefix=topic_prefix)
        async with running_consumer(consumer):
            await eventually(lambda: handled, timeout=30)

    letters = await read_topic(kafka_bootstrap, CAMPAIGN_DUE.dlq_name(topic_prefix), expect=5)
    assert [e.run_id for e in handled] == [good.run_id]
    assert [d["error_code"] for d in letters] == [
        "event_not_json", "schema_version_unsupported", "schema_invalid", "handler_crashed", "campaign_missing",
    ]
    assert letters[0]["value"] == "this is not json"
    assert "run_id" in letters[2]["error"] and "ZeroDivisionError" in letters[3]["error"]
    assert all(d["topic"] == topic and d["key"] == "k" for d in letters)
    assert [d["offset"] for d in letters] == sorted(d["offset"] for d in letters)
    assert len({(d["partition"], d["offset"]) for d in letters}) == 5


async def test_a_retryable_failure_is_retried_then_handled_once(kafka_bootstrap: str, topic_prefix: str) -> None:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    attempts: list[uuid.UUID] = []
    handled: list[uuid.UUID] = []

    async def flaky(event: CampaignDue) -> None:
        attempts.append(event.run_id)
        if len(attempts) < 3:
            raise RetryableError("imis_unavailable", "iMIS did not answer")
        handled.append(event.run_id)

    event = _due()
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        await publisher.publish(CAMPAIGN_DUE, event, key="k")
        consumer = EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=f"{topic_prefix}g",
                                 handlers={CAMPAIGN_DUE: flaky}, publisher=publisher, prefix=topic_prefix)
        async with running_consumer(consumer):
            await eventually(lambda: handled, timeout=30)
    assert attempts == [event.run_id] * 3 and handled == [event.run_id]
    assert await read_topic(kafka_bootstrap, CAMPAIGN_DUE.dlq_name(topic_prefix), expect=1, timeout=2) == []


async def test_a_database_outage_in_a_handler_is_waited_out_past_max_retry_and_never_dead_lettered(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A handler that does not translate asyncpg's errors (PostgreSQL restarting) gets the same record again
    however long the outage lasts: it used to be dead-lettered as handler_crashed, a lost event."""
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    attempts: list[float] = []
    handled: list[uuid.UUID] = []

    async def during_a_restart(event: CampaignDue) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if attempts[-1] - attempts[0] < 1.0:  # longer than max_retry_s below
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        handled.append(event.run_id)

    event = _due()
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        await publisher.publish(CAMPAIGN_DUE, event, key="k")
        consumer = EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=f"{topic_prefix}g", max_retry_s=0.3,
                                 handlers={CAMPAIGN_DUE: during_a_restart}, publisher=publisher, prefix=topic_prefix)
        async with running_consumer(consumer):
            await eventually(lambda: handled, timeout=30)
    assert handled == [event.run_id] and len(attempts) > 2
    assert await read_topic(kafka_bootstrap, CAMPAIGN_DUE.dlq_name(topic_prefix), expect=1, timeout=2) == []


async def test_committed_events_are_not_handled_again_by_the_next_consumer(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    seen: list[uuid.UUID] = []

    async def record(event: CampaignDue) -> None:
        seen.append(event.run_id)

    first, second = _due(), _due()
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        def consumer() -> EventConsumer:
            return EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=f"{topic_prefix}g",
                                 handlers={CAMPAIGN_DUE: record}, publisher=publisher, prefix=topic_prefix)

        await publisher.publish(CAMPAIGN_DUE, first, key="k")
        async with running_consumer(consumer()):
            await eventually(lambda: len(seen) == 1, timeout=30)
        await publisher.publish(CAMPAIGN_DUE, second, key="k")
        async with running_consumer(consumer()):
            await eventually(lambda: len(seen) == 2, timeout=30)
    assert seen == [first.run_id, second.run_id]



async def test_asked_to_stop_the_consumer_finishes_the_event_in_hand_commits_and_returns(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    events = [_due() for _ in range(5)]
    seen: list[uuid.UUID] = []
    in_hand, release = asyncio.Event(), asyncio.Event()

    async def record(event: CampaignDue) -> None:
        if event.run_id == events[1].run_id and not release.is_set():
            in_hand.set()
            await release.wait()  # the second event is being handled when SIGTERM comes
        seen.append(event.run_id)

    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        def consumer() -> EventConsumer:
            return EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=f"{topic_prefix}g",
                                 handlers={CAMPAIGN_DUE: record}, publisher=publisher, prefix=topic_prefix)

        for event in events:
            await publisher.publish(CAMPAIGN_DUE, event, key="one partition")
        first = consumer()
        await first.start()
        try:
            running = asyncio.create_task(first.run())
            await asyncio.wait_for(in_hand.wait(), timeout=60)
            first.request_stop()
            release.set()
            await asyncio.wait_for(running, timeout=60)  # returns by itself: nothing cancels it
        finally:
            await first.stop()
        assert seen == [events[0].run_id, events[1].run_id]  # the event in hand was finished, no other begun
        async with running_consumer(consumer()):  # the group's next member starts after the committed two
            await eventually(lambda: len(seen) == 5, timeout=60)
    assert seen == [e.run_id for e in events]
