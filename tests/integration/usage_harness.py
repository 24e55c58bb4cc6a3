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

from harness import factories
from libs.common import run_reasons
from libs.common.events import Event
from libs.common.run_reasons import RunReason
from libs.common.topics import TopicSpec


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    campaign_id: uuid.UUID
    slug: str


async def seed_org(pool: asyncpg.Pool, *, alert_emails: Iterable[str] = (), contact_email: str | None = None,
                   test_mode: bool = False, allowance: int | None = None, time_zone: str = "America/New_York",
                   campaign_name: str = "Renewals") -> Org:
    """An organisation with a Twilio account, one campaign and, with ``allowance``, a subscription."""
    slug = f"u-{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn, conn.transaction():
        org_id = await factories.make_org(conn, slug=slug, name=f"Org {slug}", alert_emails=list(alert_emails),
                                          time_zone=time_zone)
        await factories.make_sms_account(conn, org_id, auth_token=secrets.token_hex(16),
                                         webhook_base_url="https://hooks.test", test_mode=test_mode)
        campaign_id = await factories.make_campaign(conn, org_id, name=campaign_name, contact_email=contact_email)
        if allowance is not None:
            await conn.execute("INSERT INTO subscriptions (org_id, plan, monthly_segment_allowance) "
                               "VALUES ($1, 'Standard', $2)", org_id, allowance)
    return Org(org_id, campaign_id, slug)


async def seed_run(pool: asyncpg.Pool, org: Org, *, state: str = "sending", reason: RunReason | None = None,
                   targeted: int = 0) -> uuid.UUID:
    stored = run_reasons.columns(reason)
    return await factories.make_run(pool, org.id, org.campaign_id,
                                    occurrence_at=factories.Sql("now() - make_interval(secs => random() * 1000)"),
                                    state=state, state_reason=stored["reason"], state_reason_code=stored["reason_code"],
                                    state_reason_detail=stored["reason_detail"], targeted=targeted)


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
