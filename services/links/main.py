"""Links service: answers tracked short links (``redirects.py``) and records their clicks in PostgreSQL.

Wiring only: settings, connections, the named queries (checked at start), the web app with /healthz,
/readyz and ``/<code>``, and the link-clicks consumer (``clicks.py``) as the service's worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.runtime import Service, health_router
from libs.common.settings import Settings
from libs.common.topics import LINK_CLICKS, group_id
from services.links.clicks import ClickRecorder
from services.links.db import LinkStore
from services.links.redirects import Redirector, ShortLinks

NAME = "links"


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    async with open_connections(settings, [LINK_CLICKS], min_pool_size=4) as conn:
        store = LinkStore(conn.pool)
        await store.check()
        redirector = Redirector(store, conn.publisher)

        consumer = ClickRecorder(store, settings.kafka, group_id=group_id(NAME, settings.topic_prefix),
                                 publisher=conn.publisher, prefix=settings.topic_prefix,
                                 session_timeout_ms=settings.kafka_session_timeout_ms)
        health = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None, openapi_url=None)
        health.include_router(health_router(NAME, conn.readiness_checks()))
        app = ShortLinks(health, redirector=redirector, passthrough=frozenset({"/healthz", "/readyz"}))
        await consumer.start()
        try:
            yield Service(app=app, workers=[consumer.run])
        finally:
            await redirector.drain()
            await consumer.stop()
