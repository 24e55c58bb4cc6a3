"""The faust-streaming contender (bench/faust_usage) computes the same usage rollups as the usage service:
both run as real processes on one load on the real broker, each into its own database."""

from __future__ import annotations

import pytest

from bench.usage_load import make_load, produce
from bench.usage_streams import FAUST, SERVICE, run_one
from harness.kafka import read_topic, running_publisher
from libs.common.events import SendResult
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import SEND_RESULTS

pytestmark = pytest.mark.timeout(300)


async def test_faust_agents_and_the_service_roll_up_the_same_load_alike(database_url: str, kafka_bootstrap: str,
                                                                       topic_prefix: str) -> None:
    load = make_load(240)
    kafka = KafkaAccess(kafka_bootstrap)
    await produce(kafka, topic_prefix, load)
    first = load.messages[0]
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        # The dispatcher republishes a finished recipient's result under a new event id: counted once.
        again = SendResult(org_id=load.org_id, run_id=first.run_id, recipient_id=first.recipient_id,
                           sender="+18885550100", to=first.to, outcome="sent", message_sid=first.sid,
                           segments=first.segments)
        await publisher.publish(SEND_RESULTS, again, key=str(first.run_id))
        await publisher.publish_raw(SEND_RESULTS.full_name(topic_prefix), b"not json", key=b"poison")

    outcomes = [await run_one(impl, load, topic_prefix, admin_url=database_url, kafka=kafka)
                for impl in (SERVICE, FAUST)]

    expected = load.expected()
    for outcome in outcomes:
        assert (outcome.lost, outcome.doubled, outcome.lag) == (0, 0, 0), outcome.implementation
        assert {row[0]: tuple(row[1:5]) for row in outcome.rollups} == {
            run: (e["messages"], e["segments"], e["delivered"], e["undelivered"]) for run, e in expected.items()}
    service, faust = outcomes
    assert faust.rollups == service.rollups  # every column, money included
    letters = await read_topic(kafka_bootstrap, SEND_RESULTS.dlq_name(topic_prefix), expect=2)
    assert sorted((d["consumer_group"], d["error_code"]) for d in letters) == [
        (f"{topic_prefix}usage", "event_not_json"), (f"{topic_prefix}usage-faust", "event_not_json")]
