"""API service: the REST API and the staff dashboard (FastAPI).

Wiring only: settings, connections, routers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.runtime import Service, health_router
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE, CONSENT
from services.api.routes import dashboard

NAME = "api"


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    async with open_connections(settings, [CAMPAIGN_DUE, CONSENT]) as conn:
        app = FastAPI(title="Textpulse API", version="0.1.0")
        app.include_router(health_router(NAME, conn.readiness_checks()))
        app.include_router(dashboard.router)
        yield Service(app=app)
