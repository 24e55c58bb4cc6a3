"""Shared fixtures: a fresh migrated PostgreSQL database per session, the Kafka bootstrap address,
uniquely prefixed topics per test (deleted afterwards), cheap password hashing, and helpers to wait on outcomes
with a deadline.

``make test`` (``python -m deploy.stack test``) starts PostgreSQL and Kafka and passes their
addresses in ``TEXTPULSE_TEST_DATABASE_URL`` / ``TEXTPULSE_TEST_KAFKA_BOOTSTRAP_SERVERS``; running
pytest by hand uses the local defaults, so start them first with ``python -m deploy.stack infra``.
``TEXTPULSE_TEST_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` runs tests/e2e against a private SASL_SSL broker
instead, each service process as its own Kafka user (the ``kafka`` fixture, tests/kafka_cluster.py).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest

from harness.databases import create_database, drop_database
from harness.kafka import own_topics
from libs.common.db import apply_migrations, create_pool
from libs.common.kafka_security import KafkaAccess
from libs.common.settings import load_settings
from libs.common.state_tables import sync_state_transitions
from services.api import auth
from tests.kafka_cluster import KafkaCluster, SaslBroker, sasl_requested

T = TypeVar("T")

# Tests hash passwords with argon2's cheapest parameters (TEXTPULSE_PASSWORD_HASH_COST, refused in
# production): production's cost ~50 ms a hash, and a suite makes thousands. Processes tests start inherit it.
os.environ.setdefault("TEXTPULSE_PASSWORD_HASH_COST", "cheap")
auth.use_password_cost(load_settings().password_hash_cost)

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A database created for this test session, with every migration applied."""
    name = f"textpulse_test_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
        await sync_state_transitions(conn)  # as python -m deploy.migrate does at boot
    finally:
        await conn.close()
    yield url
    await drop_database(name)


@pytest.fixture(scope="session")
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def sasl_kafka() -> AsyncIterator[KafkaCluster]:
    """A private SASL_SSL broker with a Kafka user per service, for this session (tests/kafka_cluster.py)."""
    broker = SaslBroker()
    cluster = await broker.start()
    yield cluster
    await broker.stop()


@pytest.fixture(scope="session")
def kafka(request: pytest.FixtureRequest) -> KafkaCluster:
    """The broker and its users: the shared PLAINTEXT one, or the private SASL_SSL one when
    TEXTPULSE_TEST_KAFKA_SECURITY_PROTOCOL=SASL_SSL (for tests/e2e)."""
    if sasl_requested():
        cluster: KafkaCluster = request.getfixturevalue("sasl_kafka")
        return cluster
    return KafkaCluster(KafkaAccess(os.environ.get("TEXTPULSE_TEST_KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP)))


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: KafkaCluster) -> str:
    return kafka.bootstrap


@pytest.fixture
async def topic_prefix(kafka: KafkaCluster) -> AsyncIterator[str]:
    """A prefix that gives each test its own topics (and consumer groups) on the session's broker; the
    topics made under it, DLQs included, are deleted (as its admin) when the test ends."""
    async with own_topics(kafka.admin) as prefix:
        yield prefix


async def eventually(
    probe: Callable[[], Awaitable[T] | T], *, timeout: float = 20.0, interval: float = 0.05
) -> T:
    """Call ``probe`` (sync or async) until it returns a truthy value; fail with its last value after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
