"""A partition revoked while the consumer is still handing out a batch it fetched: no record of it reaches a
lane afterwards, so the partition's next owner is the only process pacing its senders."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition

from libs.common.errors import PermanentError
from libs.common.events import Recipient
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import RECIPIENTS
from services.dispatcher.clock import SystemClock
from services.dispatcher.consumer import DispatchConsumer, PartitionOffsets
from services.dispatcher.delivery import Attempt, Delivered
from services.dispatcher.pacing import SlidingWindow

TP = TopicPartition(RECIPIENTS.full_name(""), 3)


def record(offset: int, sender: str) -> ConsumerRecord:
    event = Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                      sender=sender, to=f"+1415555{offset:04d}", body="Hi", segments=1)
    return ConsumerRecord(topic=TP.topic, partition=TP.partition, offset=offset, timestamp=0, timestamp_type=0,
                          key=sender.encode(), value=event.model_dump_json().encode(), checksum=None,
                          serialized_key_size=0, serialized_value_size=0, headers=())


class Harness:
    def __init__(self, *, revoke_during_setup: bool) -> None:
        self.delivered: list[Recipient] = []
        self.revoke_during_setup = revoke_during_setup
        self.consumer = DispatchConsumer(
            kafka=KafkaAccess("127.0.0.1:9"), group_id="test", prefix="", publisher=None,  # type: ignore[arg-type]
            deliver=self.deliver, setup_sender=self.setup_sender, refresh_run=self.refresh_run,
            check_events=self.check_events, clock=SystemClock())

    async def deliver(self, event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
        self.delivered.append(event)
        return Delivered(None)

    async def setup_sender(self, event: Recipient) -> SlidingWindow:
        if self.revoke_during_setup:  # the rebalance lands while the sender's rate is read from PostgreSQL
            await self.consumer.revoke({TP})
        return SlidingWindow(3)

    async def refresh_run(self, run_id: uuid.UUID) -> None:
        return None

    async def check_events(self, events: Sequence[Recipient]) -> list[PermanentError | None]:
        return [None] * len(events)


async def test_records_of_a_partition_revoked_mid_batch_never_reach_a_lane() -> None:
    harness = Harness(revoke_during_setup=True)
    harness.consumer.assign({TP})
    await harness.consumer._accept_batches({TP: [record(0, "+18885550100"), record(1, "+18885550101")]})
    await asyncio.sleep(0.2)
    assert harness.delivered == []
    assert harness.consumer.buffered == 0
    await harness.consumer.stop()


async def test_records_of_an_owned_partition_are_sent() -> None:
    harness = Harness(revoke_during_setup=False)
    harness.consumer.assign({TP})
    await harness.consumer._accept_batches({TP: [record(0, "+18885550100"), record(1, "+18885550101")]})
    await asyncio.sleep(0.2)
    assert sorted(e.sender for e in harness.delivered) == ["+18885550100", "+18885550101"]
    await harness.consumer.stop()


class RevokedDuringCommit:
    """A Kafka consumer whose commit is overtaken by a revocation of the partition being committed."""

    def __init__(self, owner: DispatchConsumer) -> None:
        self.owner = owner
        self.committed: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(offsets)
        self.owner._offsets.pop(TP, None)  # what revoke() does once its own commit is done


async def test_a_revocation_during_a_commit_does_not_stop_the_committer() -> None:
    harness = Harness(revoke_during_setup=False)
    consumer = harness.consumer
    real, fake = consumer._consumer, RevokedDuringCommit(consumer)
    consumer._consumer = fake
    consumer._offsets[TP] = PartitionOffsets()
    consumer._offsets[TP].take(7)
    consumer._offsets[TP].finish(7)
    try:
        await consumer._commit([TP])  # raised KeyError, which ended the committer task for good
        assert fake.committed == [{TP: 8}]
    finally:
        consumer._consumer = real
        await consumer.stop()
