"""Usage service: usage rollups from send-results, statuses and opt-outs; alerts raised and e-mailed.

Wiring only. Seven workers run beside /healthz, /readyz and /metrics:

- the consumer (handlers.py): SEND_RESULTS, MESSAGE_STATUS and CONSENT into the usage rollups, with
  the allowance and opted-out alerts they call for;
- the alert watcher (watcher.py): runs that stopped badly, and a stuck iMIS write-back, into alerts;
- the alert mailer (mailer.py): the alerts outbox over SMTP;
- the retention pruner (retention.py): members' words and rendered texts past each organisation's retention;
- the settler (settlement.py): Twilio's price for each message, fetched once Twilio has it;
- the reply digester (reply_digests.py): members' replies e-mailed to each campaign's contact, batched;
- the outbox sampler (backlog.py): the alert, iMIS write-back and event outboxes' backlogs for /metrics.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.kafka import EventConsumer
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CONSENT, MESSAGE_STATUS, SEND_RESULTS, group_id
from services.usage import db, handlers
from services.usage.backlog import QUERIES as BACKLOG_QUERIES
from services.usage.backlog import BacklogSampler, BacklogTuning
from services.usage.conditions import OptedOutRule
from services.usage.mailer import AlertMailer, MailerTuning, SmtpConfig
from services.usage.one_off_usage import QUERIES as ONE_OFF_QUERIES
from services.usage.one_off_usage import OneOffUsage, OneOffUsageTuning
from services.usage.reply_digests import QUERIES as DIGEST_QUERIES
from services.usage.reply_digests import DigestTuning, ReplyDigester
from services.usage.retention import QUERIES as RETENTION_QUERIES
from services.usage.retention import RetentionPruner, RetentionTuning
from services.usage.settlement import PriceSettler, SettlementTuning
from services.usage.watcher import AlertWatcher, WatcherTuning

NAME = "usage"


@dataclass(frozen=True)
class UsageTuning:
    """Knobs with production defaults; tests shorten the waits."""

    watcher: WatcherTuning = field(default_factory=WatcherTuning)
    mailer: MailerTuning = field(default_factory=MailerTuning)
    retention: RetentionTuning = field(default_factory=RetentionTuning)
    settlement: SettlementTuning = field(default_factory=SettlementTuning)
    backlog: BacklogTuning = field(default_factory=BacklogTuning)
    digests: DigestTuning = field(default_factory=DigestTuning)
    one_offs: OneOffUsageTuning = field(default_factory=OneOffUsageTuning)
    opted_out_rule: OptedOutRule = field(default_factory=OptedOutRule)
    max_retry_s: float = 120.0


@asynccontextmanager
async def build(settings: Settings, tuning: UsageTuning | None = None) -> AsyncIterator[Service]:
    tuning = tuning or UsageTuning()
    async with open_connections(settings, [SEND_RESULTS, MESSAGE_STATUS, CONSENT]) as conn:
        async with conn.pool.acquire() as check:
            await db.check(check)  # a broken query fails at boot, not at the first alert
            await RETENTION_QUERIES.check(check)
            await BACKLOG_QUERIES.check(check)
            await DIGEST_QUERIES.check(check)
            await ONE_OFF_QUERIES.check(check)
        deps = handlers.UsageDeps(pool=conn.pool, base_url=settings.public_base_url,
                                  opted_out_rule=tuning.opted_out_rule)
        consumer = EventConsumer(
            kafka=settings.kafka, group_id=group_id("usage", settings.topic_prefix),
            handlers={
                SEND_RESULTS: functools.partial(handlers.record_send_result, deps=deps),
                MESSAGE_STATUS: functools.partial(handlers.record_status, deps=deps),
                CONSENT: functools.partial(handlers.record_consent, deps=deps),
            },
            publisher=conn.publisher, prefix=settings.topic_prefix,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            group_instance_id=settings.kafka_group_instance_id, max_retry_s=tuning.max_retry_s,
        )
        watcher = AlertWatcher(conn.pool, base_url=settings.public_base_url, tuning=tuning.watcher)
        mailer = AlertMailer(conn.pool, SmtpConfig.from_settings(settings), tuning=tuning.mailer)
        pruner = RetentionPruner(conn.pool, tuning=tuning.retention)
        settler = PriceSettler(deps, SecretStore.from_settings(settings), api_base_url=settings.twilio_api_base_url,
                               tuning=tuning.settlement)
        digester = ReplyDigester(conn.pool, base_url=settings.public_base_url, tuning=tuning.digests)
        sampler = BacklogSampler(conn.pool, tuning=tuning.backlog)
        one_offs = OneOffUsage(deps, tuning=tuning.one_offs)
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        await consumer.start()
        try:
            yield Service(app=app, workers=[consumer, watcher.run, mailer.run, pruner.run, settler.run, digester.run,
                                                     sampler.run, one_offs.run])
        finally:
            await consumer.stop()
