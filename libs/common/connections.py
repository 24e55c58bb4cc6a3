"""Opening and closing a service's connections: the PostgreSQL pool and the Kafka producer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from libs.common.db import create_pool, ping
from libs.common.events import Event
from libs.common.kafka import EventPublisher, check_topics, make_producer
from libs.common.kafka_shutdown import stop_producer
from libs.common.runtime import Check
from libs.common.settings import Settings
from libs.common.topics import TopicSpec


@dataclass(frozen=True)
class Connections:
    pool: asyncpg.Pool
    publisher: EventPublisher

    def readiness_checks(self) -> dict[str, Check]:
        return {"postgres": lambda: ping(self.pool), "kafka": self.publisher.ping}


@asynccontextmanager
async def open_connections(
    settings: Settings, topics: Iterable[TopicSpec[Event]], *, min_pool_size: int = 0, publishes: bool = True
) -> AsyncIterator[Connections]:
    """Connect to PostgreSQL and Kafka and check that ``topics`` exist as the manifest says.

    ``min_pool_size`` raises the pool's size for a service that holds connections across calls.
    ``publishes=False`` is for a service that writes no topic (the API): its producer only answers the
    readiness check, and is not idempotent, which on a cluster with ACLs needs a Write permission.
    Raises ConfigurationError if a topic is missing (run the topic step first); connection failures
    propagate, so a service that cannot reach its dependencies at start exits and is restarted.
    """
    await check_topics(settings.kafka, topics, prefix=settings.topic_prefix)
    pool = await create_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=max(settings.db_pool_max_size, min_pool_size),
    )
    producer = make_producer(settings.kafka, idempotent=publishes)
    try:
        await producer.start()
        yield Connections(pool, EventPublisher(producer, prefix=settings.topic_prefix))
    finally:
        await stop_producer(producer)  # bounded: a broker outage must not hold the process's exit
        await pool.close()
