"""Audience service: resolves each due run's audience into a snapshot and preflighted recipient events.

Wiring only: settings, connections, the store (its queries checked at start), the iMIS HTTP client,
a bulk producer for recipient events, the campaign-due consumer and /healthz, /readyz.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.kafka import EventConsumer
from libs.common.public_hosts import outbound_client
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS, group_id
from services.audience.db import AudienceStore
from services.audience.handlers import AudienceResolver, ImisSettings, ShortLinks
from services.audience.publishing import RecipientPublisher, make_bulk_producer

NAME = "audience"
# A resolution parses about 10,000 JSON objects per IQA page and keeps some pages of them alive: with the
# default threshold (700 allocations) the cyclic collector ran so often, over everything alive, that it
# took 40 % of the parsing CPU. Not much more seldom than this, though: each page's httpx response (its
# 1 MB body) sits in a reference cycle, and at 50,000 they piled up to 500 MB before a collection.
GC_THRESHOLDS = (10_000, 10, 10)
# iMIS pages can be slow on a large IQA; a page that takes longer than this is retried (libs/common/imis_iqa.py).
IMIS_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    # A resolution holds the stage's connection and, for a CSV or a list, a cursor's, then looks numbers up
    # on a third; /readyz pings on a fourth.
    async with open_connections(settings, [CAMPAIGN_DUE, RECIPIENTS], min_pool_size=4) as conn:
        store = AudienceStore(conn.pool, SecretStore.from_settings(settings))
        await store.check()
        bulk = make_bulk_producer(settings.kafka)
        async with outbound_client(env=settings.env, timeout=IMIS_TIMEOUT, trusted_url=settings.imis_base_url) as http:
            resolver = AudienceResolver(store, RecipientPublisher(bulk, prefix=settings.topic_prefix),
                                        ImisSettings(http, settings.imis_base_url),
                                        member_cap=settings.run_member_cap,
                                        short_links=ShortLinks(settings.short_link_base_url, settings.short_link_days))
            consumer = EventConsumer(
                kafka=settings.kafka, group_id=group_id("audience", settings.topic_prefix),
                handlers={CAMPAIGN_DUE: resolver.handle}, publisher=conn.publisher, prefix=settings.topic_prefix,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                group_instance_id=settings.kafka_group_instance_id,
                # Resolving a large IQA from a slow iMIS takes minutes, and the consumer polls only between
                # events: the layer sets max.poll.interval to this plus a minute, so it must cover a whole run.
                max_retry_s=600,
            )
            app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
            app.include_router(health_router(NAME, conn.readiness_checks()))
            gc.set_threshold(*GC_THRESHOLDS)
            try:
                await bulk.start()
                await consumer.start()
                yield Service(app=app, workers=[consumer])
            finally:
                await consumer.stop()
                await bulk.stop()
