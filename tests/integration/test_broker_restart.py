"""A consumer rides out a restart of the real broker and resumes from its committed offset.

The test runs a broker of its own (same script as the stack, other ports, its own data), so that
stopping it does not disturb the shared one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.stack import REPO, VAR, wait_for_kafka
from harness.kafka import running_consumer, running_publisher
from harness.private_servers import private_port, running
from libs.common.events import CampaignDue
from libs.common.kafka import EventConsumer, ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE
from tests.conftest import eventually


class OwnBroker:
    def __init__(self, var: Path) -> None:
        self.var = var
        self.port = private_port()  # kept across a restart: not one the kernel may hand out meanwhile
        self.controller_port = private_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if "KAFKA_BOOTSTRAP_SERVERS" not in k}
        env.update(TEXTPULSE_VAR_DIR=str(self.var), TEXTPULSE_KAFKA_PORT=str(self.port),
                   TEXTPULSE_KAFKA_CONTROLLER_PORT=str(self.controller_port),
                   TEXTPULSE_KAFKA_LIBS=str(VAR / "kafka" / "libs"))
        subprocess.run(["bash", str(REPO / "deploy/local/kafka.sh")], check=True, env=env, capture_output=True)
        await wait_for_kafka(KafkaAccess(self.bootstrap), timeout=90)

    async def stop(self) -> None:
        pid = int((self.var / "run" / "kafka.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):
            if not running(pid):
                return
            await asyncio.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    own = OwnBroker(tmp_path / "var")
    await own.start()
    yield own
    await own.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if isinstance(tp, TopicPartition) and tp.topic == topic)


async def test_consumer_resumes_from_its_committed_offset_after_a_broker_restart(broker: OwnBroker) -> None:
    prefix, group = "restart.", "restart-group"
    await ensure_topics(KafkaAccess(broker.bootstrap), [CAMPAIGN_DUE], prefix=prefix)
    handled: list[uuid.UUID] = []

    async def record(event: CampaignDue) -> None:
        handled.append(event.run_id)

    def due() -> CampaignDue:
        return CampaignDue(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(),
                           scheduled_for="2026-11-26T09:00:00Z")

    before, after = [due() for _ in range(20)], [due() for _ in range(20)]
    async with running_publisher(broker.bootstrap, prefix) as (publisher, _):
        consumer = EventConsumer(kafka=KafkaAccess(broker.bootstrap), group_id=group, handlers={CAMPAIGN_DUE: record},
                                 publisher=publisher, prefix=prefix, session_timeout_ms=6000)
        async with running_consumer(consumer):
            for event in before:
                await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))
            await eventually(lambda: len(handled) == 20, timeout=30)
            topic = CAMPAIGN_DUE.full_name(prefix)
            await eventually(lambda: _committed_is(broker.bootstrap, group, topic, 20), timeout=30)

            await broker.stop()
            await asyncio.sleep(2)  # the consumer now fails to fetch and keeps trying
            await broker.start()

            for event in after:
                await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))
            await eventually(lambda: len(handled) >= 40, timeout=90)
            await eventually(lambda: _committed_is(broker.bootstrap, group, topic, 40), timeout=30)

    assert sorted(handled) == sorted(e.run_id for e in before + after)  # nothing lost, nothing twice


async def _committed_is(bootstrap: str, group: str, topic: str, expected: int) -> bool:
    return await _committed(bootstrap, group, topic) == expected

