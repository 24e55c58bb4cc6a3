"""The real broker in SASL_SSL mode, as ``TEXTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL make demo`` runs it:
TLS, a SCRAM-SHA-512 user per service and the ACLs of libs/common/kafka_acls.py.

The broker is a private one for the session (tests/kafka_cluster.py: free ports, its own data), whatever the rest of the
suite uses. A client without credentials is turned away, the opt-out service's user can neither write
``recipients`` nor read it, and a campaign goes from the audience service through the dispatcher to the
Twilio stand-in with every service process connected as its own user.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from pydantic import SecretStr

from harness.dispatch import TwilioStandin, dispatcher_env
from harness.kafka import running_publisher
from harness.processes import free_port
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.topics import ALL_TOPICS, CAMPAIGN_DUE, CONSENT, RECIPIENTS, group_id
from standins.twilio.config import default_config
from tests.chaos.processes import ChaosStack
from tests.chaos.seeding import RATE, SENDERS, seed_org
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(600)  # the first test of a session waits for the private broker to start


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs every refused connection and fetch at ERROR; those are what these tests expect."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


async def _connects(access: KafkaAccess) -> bool:
    admin = AIOKafkaAdminClient(**client_kwargs(access), request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except KafkaConnectionError:
        return False
    finally:
        await admin.close()


@pytest.mark.usefixtures("quiet_aiokafka")
async def test_a_client_without_credentials_is_refused(sasl_kafka: KafkaCluster) -> None:
    admin = sasl_kafka.admin
    assert await _connects(admin)  # the broker is up, and its admin gets in
    assert not await _connects(KafkaAccess(admin.bootstrap_servers))  # PLAINTEXT
    assert not await _connects(KafkaAccess(admin.bootstrap_servers, "SSL", ssl_cafile=admin.ssl_cafile))  # TLS only
    wrong = KafkaAccess(admin.bootstrap_servers, "SASL_SSL", "SCRAM-SHA-512", "optout", SecretStr("guessed"),
                        ssl_cafile=admin.ssl_cafile)
    assert not await _connects(wrong)


@pytest.mark.usefixtures("quiet_aiokafka")
async def test_the_opt_out_service_may_not_write_recipients_nor_read_them(
    sasl_kafka: KafkaCluster, prefix: str
) -> None:
    await sasl_kafka.prepare(ALL_TOPICS, prefix=prefix)
    optout = client_kwargs(sasl_kafka.user("optout"))
    producer = AIOKafkaProducer(**optout, request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(CONSENT.full_name(prefix), b"{}", key=b"+14155550100")  # its own topic
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(RECIPIENTS.full_name(prefix), b"{}", key=b"+18885550100")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(RECIPIENTS.full_name(prefix), **optout, group_id=group_id("optout", prefix),
                                auto_offset_reset="earliest")
    try:
        with pytest.raises(TopicAuthorizationFailedError):  # at start (its metadata) or at the first fetch
            await consumer.start()
            await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()


@pytest.fixture
async def secured_stack(tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, sasl_kafka: KafkaCluster,
                        prefix: str) -> AsyncIterator[ChaosStack]:
    """The opt-out, usage, audience and dispatcher services as processes, each as its own Kafka user."""
    await sasl_kafka.prepare(ALL_TOPICS, prefix=prefix)
    optout_port = free_port()
    standin = TwilioStandin(tmp_path, list(SENDERS), rate=RATE,
                            inbound_url=f"http://127.0.0.1:{optout_port}/twilio/inbound")
    env = dispatcher_env(database_url, sasl_kafka.user("dispatcher"), prefix, standin) | {"TEXTPULSE_ENV": "test"}
    stack = ChaosStack(tmp_path, env, standin, kafka_env=sasl_kafka.service_env, dispatcher_count=2)
    try:
        await stack.start(optout_port)
        yield stack
    finally:
        stack.stop()


async def test_a_campaign_reaches_every_member_once_through_the_secured_broker(
    secured_stack: ChaosStack, sasl_kafka: KafkaCluster, db_pool: asyncpg.Pool, prefix: str
) -> None:
    assert secured_stack.optout is not None
    org = await seed_org(db_pool, default_config(), secured_stack.optout.url, random.Random(20))
    campaign = org.campaigns[0]
    async with running_publisher(sasl_kafka.user("scheduler"), prefix) as (publisher, _):
        await publisher.publish(CAMPAIGN_DUE, campaign.due(org.org_id), key=str(campaign.campaign_id))

    run = await eventually(lambda: db_pool.fetchrow(
        "SELECT state, sent, failed FROM campaign_runs WHERE id = $1 AND state = 'completed'", campaign.run_id),
        timeout=240, interval=0.5)
    assert (run["sent"], run["failed"]) == (len(campaign.members), 0)
    by_number = await secured_stack.standin.messages_to()
    assert {number: len(texts) for number, texts in by_number.items()} == {m.phone: 1 for m in campaign.members}
    assert not org.never_texted & set(by_number)
    # The usage service (its own user, its own group) counted what the dispatcher reported.
    counted = await eventually(lambda: db_pool.fetchval(
        "SELECT messages FROM usage_runs WHERE run_id = $1 AND messages = $2", campaign.run_id,
        len(campaign.members)), timeout=60, interval=0.5)
    assert counted == len(campaign.members)
