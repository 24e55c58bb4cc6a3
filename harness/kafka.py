"""For tests and benchmarks that talk to the real broker: topics of their own (deleted afterwards), read a
topic from the start, run a publisher or a consumer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from libs.common.kafka import EventConsumer, EventPublisher, make_producer
from libs.common.kafka_security import KafkaAccess, client_kwargs


def as_access(kafka: KafkaAccess | str) -> KafkaAccess:
    """Harnesses take an access or, for the shared PLAINTEXT broker, just its address."""
    return kafka if isinstance(kafka, KafkaAccess) else KafkaAccess(kafka)


def new_prefix(kind: str = "t") -> str:
    """A topic (and consumer group) prefix no other test or benchmark uses."""
    return f"{kind}{uuid.uuid4().hex[:10]}."


async def delete_topics_with_prefix(kafka: KafkaAccess | str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (DLQs included); returns the names deleted."""
    admin = AIOKafkaAdminClient(**client_kwargs(as_access(kafka)), request_timeout_ms=30_000)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if name.startswith(prefix))
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


@asynccontextmanager
async def own_topics(kafka: KafkaAccess | str, kind: str = "t") -> AsyncIterator[str]:
    """A fresh prefix; every topic made under it is deleted on the way out, so a run leaves no partitions."""
    prefix = new_prefix(kind)
    try:
        yield prefix
    finally:
        await delete_topics_with_prefix(kafka, prefix)


async def records_to_end(kafka: KafkaAccess | str, partitions: Mapping[str, int]) -> list[ConsumerRecord]:
    """Every record of the topics (name: partition count) from their beginning to their end offsets as
    of now, without waiting for more: once a producer's sends were acknowledged, a duplicate shows here."""
    consumer = AIOKafkaConsumer(**client_kwargs(as_access(kafka)), enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for topic, count in partitions.items() for p in range(count)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[ConsumerRecord] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


async def read_topic(kafka: KafkaAccess | str, topic: str, *, expect: int,
                     timeout: float = 20.0) -> list[dict[str, Any]]:
    """Read ``topic`` from its beginning (no group) until ``expect`` JSON records arrived or time is up."""
    consumer = AIOKafkaConsumer(topic, **client_kwargs(as_access(kafka)), auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records += [json.loads(r.value) for r in batch]
    finally:
        await consumer.stop()
    return records


@asynccontextmanager
async def running_publisher(
    kafka: KafkaAccess | str, prefix: str
) -> AsyncIterator[tuple[EventPublisher, AIOKafkaProducer]]:
    producer = make_producer(as_access(kafka))
    await producer.start()
    try:
        yield EventPublisher(producer, prefix=prefix), producer
    finally:
        await producer.stop()


@asynccontextmanager
async def running_consumer(consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
