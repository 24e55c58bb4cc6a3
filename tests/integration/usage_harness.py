"""Seeds and probes for the usage service's tests: organisations with runs, and "has the consumer caught up".

    org = await seed_org(pool, alert_emails=["ops@acme.test"], contact_email="jane@acme.test")
    run_id = await seed_run(pool, org)
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from harness.credentials import seal_credentials
from libs.common.events import Event
from libs.common.topics import TopicSpec


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    campaign_id: uuid.UUID
    slug: str


def fresh_sid() -> str:
    return "SM" + secrets.token_hex(16)


async def seed_org(pool: asyncpg.Pool, *, alert_emails: Iterable[str] = (), contact_email: str | None = None,
                   test_mode: bool = False, allowance: int | None = None, time_zone: str = "America/New_York",
                   campaign_name: str = "Renewals") -> Org:
    """An organisation with a Twilio account, one campaign and, with ``allowance``, a subscription."""
    slug = f"u-{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn, conn.transaction():
        org_id = await conn.fetchval(
            "INSERT INTO organisations (slug, name, alert_emails, time_zone) VALUES ($1, $2, $3, $4) RETURNING id",
            slug, f"Org {slug}", list(alert_emails), time_zone)
        await conn.execute(
            "INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url, test_mode) "
            "VALUES ($1, $2, $3, 'https://hooks.test', $4)", org_id, "AC" + secrets.token_hex(16),
            secrets.token_hex(16), test_mode)
        await seal_credentials(conn)
        campaign_id = await conn.fetchval(
            "INSERT INTO campaigns (org_id, name, body, contact_email) VALUES ($1, $2, 'Hi', $3) RETURNING id",
            org_id, campaign_name, contact_email)
        if allowance is not None:
            await conn.execute("INSERT INTO subscriptions (org_id, plan, monthly_segment_allowance) "
                               "VALUES ($1, 'Standard', $2)", org_id, allowance)
    return Org(org_id, campaign_id, slug)


async def seed_run(pool: asyncpg.Pool, org: Org, *, state: str = "sending", reason: str | None = None,
                   targeted: int = 0) -> uuid.UUID:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, state_reason, targeted) "
            "VALUES ($1, $2, now() - make_interval(secs => random() * 1000), $3, $4, $5) RETURNING id",
            org.id, org.campaign_id, state, reason, targeted)


async def consumer_caught_up(bootstrap: str, group: str, specs: Iterable[TopicSpec[Event]], prefix: str) -> bool:
    """True when ``group`` has committed every partition of these topics up to its end; False while the
    broker does not answer (a probe for ``eventually``)."""
    partitions = [TopicPartition(s.full_name(prefix), p) for s in specs for p in range(s.partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        committed = await admin.list_consumer_group_offsets(group)
        await consumer.start()
        ends = await consumer.end_offsets(partitions)
    except KafkaError:
        return False
    finally:
        await admin.close()
        await consumer.stop()
    return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())
