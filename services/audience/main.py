"""Audience service: resolves each due run's audience into a snapshot and preflighted recipient events.

Wiring only: settings, connections, the store (its queries checked at start), the iMIS HTTP client,
a bulk producer for recipient events, the campaign-due consumer and /healthz, /readyz.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.kafka import EventConsumer
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS, group_id
from services.audience.db import AudienceStore
from services.audience.handlers import AudienceResolver, ImisSettings, ShortLinks
from services.audience.publishing import RecipientPublisher, make_bulk_producer

NAME = "audience"
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
        async with httpx.AsyncClient(timeout=IMIS_TIMEOUT) as http:
            resolver = AudienceResolver(store, RecipientPublisher(bulk, prefix=settings.topic_prefix),
                                        ImisSettings(http, settings.imis_base_url),
                                        member_cap=settings.run_member_cap,
                                        short_links=ShortLinks(settings.short_link_base_url, settings.short_link_days))
            consumer = EventConsumer(
                kafka=settings.kafka, group_id=group_id("audience", settings.topic_prefix),
                handlers={CAMPAIGN_DUE: resolver.handle}, publisher=conn.publisher, prefix=settings.topic_prefix,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                # Resolving a large IQA from a slow iMIS takes minutes, and the consumer polls only between
                # events: the layer sets max.poll.interval to this plus a minute, so it must cover a whole run.
                max_retry_s=600,
            )
            app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
            app.include_router(health_router(NAME, conn.readiness_checks()))
            try:
                await bulk.start()
                await consumer.start()
                yield Service(app=app, workers=[consumer.run])
            finally:
                await consumer.stop()
                await bulk.stop()
