"""The scheduler's metrics on real PostgreSQL and Kafka: how late each published run was, and runs missed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from harness import factories
from harness.kafka import running_publisher
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE
from services.scheduler.loop import Scheduler, tick

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
async def no_campaigns(db_pool: asyncpg.Pool) -> None:
    """The scheduler looks at every organisation's campaigns: start from none."""
    await db_pool.execute("DELETE FROM campaigns")


@pytest.fixture
async def scheduler(db_pool: asyncpg.Pool, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Scheduler]:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        yield Scheduler(pool=db_pool, publisher=publisher, instance="test-metrics", batch=10)


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_lateness_of_each_published_run_and_the_missed_runs_are_counted(
    db_pool: asyncpg.Pool, scheduler: Scheduler,
) -> None:
    org = await factories.make_org(db_pool)
    strict = await factories.make_campaign(db_pool, org, state="scheduled", schedule={"kind": "none"})
    relaxed = await factories.make_campaign(db_pool, org, state="scheduled", schedule={"kind": "none"},
                                            send_when_late=True)
    recent = await factories.make_campaign(db_pool, org, state="scheduled", schedule={"kind": "none"})
    await factories.make_run(db_pool, org, strict, occurrence_at=NOW - timedelta(hours=2))
    await factories.make_run(db_pool, org, relaxed, occurrence_at=NOW - timedelta(hours=2))
    await factories.make_run(db_pool, org, recent, occurrence_at=NOW - timedelta(seconds=30))
    published = value("textpulse_scheduler_lateness_seconds_count")
    late_s = value("textpulse_scheduler_lateness_seconds_sum")
    missed = value("textpulse_scheduler_runs_missed_total")
    within_a_minute = REGISTRY.get_sample_value("textpulse_scheduler_lateness_seconds_bucket", {"le": "60.0"}) or 0.0

    report = await tick(scheduler, NOW)

    assert (report.published, report.missed) == (2, 1)
    assert value("textpulse_scheduler_lateness_seconds_count") == published + 2
    assert value("textpulse_scheduler_lateness_seconds_sum") == late_s + 7200 + 30
    assert REGISTRY.get_sample_value("textpulse_scheduler_lateness_seconds_bucket", {"le": "60.0"}) \
        == within_a_minute + 1
    assert value("textpulse_scheduler_runs_missed_total") == missed + 1
