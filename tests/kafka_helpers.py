"""Helpers for tests that talk to the real broker: read a topic from the start, run a consumer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from libs.common.kafka import EventConsumer, EventPublisher, make_producer
from libs.common.kafka_security import KafkaAccess, client_kwargs
from tests.kafka_cluster import as_access


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
