"""Kafka clients stop within their bound while the broker does not answer (libs/common/kafka_shutdown.py).

The broker is frozen (SIGSTOP), as behind a network partition: connections stay open and requests get no
answer, so aiokafka's own ``stop`` would wait for a request timeout (a producer's unsent batch, a consumer's
LeaveGroup) or longer. Each stop returns within its bound instead and says what it gave up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from libs.common.kafka import ensure_topics, make_producer
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.kafka_shutdown import stop_consumer, stop_producer
from libs.common.topics import WEBHOOKS
from tests.conftest import eventually
from tests.integration.test_broker_restart import OwnBroker

BOUND_S = 1.0
HARNESS_TIMEOUT_S = 120  # only so that a hung stop fails the test instead of hanging the suite


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    own = OwnBroker(tmp_path / "var")
    await own.start()
    yield own
    os.kill(_pid(own), signal.SIGCONT)
    await own.stop()


def _pid(broker: OwnBroker) -> int:
    return int((broker.var / "run" / "kafka.pid").read_text())


async def test_a_producer_and_a_consumer_stop_within_their_bound_while_the_broker_is_frozen(
    broker: OwnBroker, caplog: pytest.LogCaptureFixture
) -> None:
    access = KafkaAccess(broker.bootstrap)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(access, [WEBHOOKS], prefix=prefix)
    topic = WEBHOOKS.full_name(prefix)
    producer = make_producer(access)
    await producer.start()
    await producer.send_and_wait(topic, b"before", key=b"k")
    consumer = AIOKafkaConsumer(topic, **client_kwargs(access), group_id=f"{prefix}group", enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=10_000, heartbeat_interval_ms=3_000)
    await consumer.start()

    async def joined() -> bool:
        await consumer.getmany(timeout_ms=200)
        return bool(consumer.assignment())

    await eventually(joined, timeout=60)

    os.kill(_pid(broker), signal.SIGSTOP)
    unsent = asyncio.ensure_future(producer.send_and_wait(topic, b"never acknowledged", key=b"k"))
    with caplog.at_level(logging.WARNING, logger="libs.common.kafka_shutdown"):
        await asyncio.wait_for(stop_consumer(consumer, timeout_s=BOUND_S), HARNESS_TIMEOUT_S)
        await asyncio.wait_for(stop_producer(producer, timeout_s=BOUND_S), HARNESS_TIMEOUT_S)
    abandoned = sorted(getattr(r, "client", "") for r in caplog.records if r.getMessage() == "kafka.stop_abandoned")
    assert abandoned == ["consumer", "producer"]  # each gave up waiting for the broker, and said so
    assert not unsent.done() or unsent.cancelled() or unsent.exception() is not None  # never reported as sent
    unsent.cancel()
