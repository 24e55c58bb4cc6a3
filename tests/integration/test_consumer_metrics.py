"""The consumer layer's metrics on the real broker: each dead letter counted by topic and code, as the DLQ
holds them, and the group's lag on the partition down to 0 once its records are committed."""

from __future__ import annotations

import json
import uuid

from prometheus_client import REGISTRY

from harness.kafka import read_topic, running_consumer, running_publisher
from libs.common.errors import PermanentError
from libs.common.events import CampaignDue
from libs.common.kafka import EventConsumer, ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE
from tests.conftest import eventually


def _due(run_id: uuid.UUID | None = None) -> CampaignDue:
    return CampaignDue(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=run_id or uuid.uuid4(),
                       scheduled_for="2026-11-26T09:00:00Z")


async def test_dead_letters_and_lag_are_counted_as_the_broker_holds_them(kafka_bootstrap: str,
                                                                         topic_prefix: str) -> None:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    topic, group = CAMPAIGN_DUE.full_name(topic_prefix), f"{topic_prefix}g"
    refused = uuid.uuid4()
    handled: list[CampaignDue] = []

    async def handle(event: CampaignDue) -> None:
        if event.run_id == refused:
            raise PermanentError("campaign_missing", "no such campaign")
        handled.append(event)

    good = [_due() for _ in range(20)]
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        await publisher.publish_raw(topic, b"not json", key=b"k")
        await publisher.publish_raw(topic, b"{}", key=b"k")
        await publisher.publish(CAMPAIGN_DUE, _due(refused), key="k")
        for event in good:
            await publisher.publish(CAMPAIGN_DUE, event, key="k")
        consumer = EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=group,
                                 handlers={CAMPAIGN_DUE: handle}, publisher=publisher, prefix=topic_prefix)
        async with running_consumer(consumer):
            await eventually(lambda: len(handled) == len(good), timeout=30)
            letters = await read_topic(kafka_bootstrap, CAMPAIGN_DUE.dlq_name(topic_prefix), expect=3)
            partition = str(letters[0]["partition"])
            await eventually(lambda: REGISTRY.get_sample_value(
                "textpulse_consumer_lag", {"group": group, "topic": topic, "partition": partition}) == 0, timeout=30)

    codes = [d["error_code"] for d in letters]
    assert codes == ["event_not_json", "schema_invalid", "campaign_missing"]
    for code in codes:
        assert REGISTRY.get_sample_value("textpulse_dlq_records_total", {"topic": topic, "code": code}) == 1
    assert json.loads(letters[2]["value"])["run_id"] == str(refused)
