"""Audience service: resolves each due run's audience into preflighted recipient events.

Wiring only: settings, connections, the web app with /healthz and /readyz. The event handlers are
added with the service's own issue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.runtime import Service, health_router
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS

NAME = "audience"


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    async with open_connections(settings, [CAMPAIGN_DUE, RECIPIENTS]) as conn:
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        yield Service(app=app)
