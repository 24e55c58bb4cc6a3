"""Shared fixtures: a fresh migrated PostgreSQL database per session, the Kafka bootstrap address,
uniquely prefixed topics per test, and helpers to wait on outcomes with a deadline.

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

from libs.common.db import apply_migrations, create_pool
from libs.common.kafka_security import KafkaAccess
from libs.common.state_tables import sync_state_transitions
from tests.kafka_cluster import KafkaCluster, SaslBroker, sasl_requested

T = TypeVar("T")

DEFAULT_DATABASE_URL = "postgresql://textpulse:textpulse@127.0.0.1:55432/textpulse"
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


def _admin_url() -> str:
    return os.environ.get("TEXTPULSE_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(_admin_url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(_admin_url(), name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(_admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


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
def topic_prefix() -> str:
    """A prefix that gives each test its own topics (and consumer groups) on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}."


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
