"""API service: the REST API and the staff dashboard (FastAPI).

Wiring only: settings, connections, the named queries (checked at start), routers, the error handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.runtime import Service, health_router
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE, CONSENT
from services.api import db
from services.api.errors import install_problem_handler
from services.api.routes import campaigns, dashboard

NAME = "api"
API_PREFIX = "/api/v1"


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    async with open_connections(settings, [CAMPAIGN_DUE, CONSENT]) as conn:
        async with conn.pool.acquire() as check:
            await db.QUERIES.check(check)
        app = FastAPI(title="Textpulse API", version="0.1.0")
        app.state.pool = conn.pool
        install_problem_handler(app)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        app.include_router(dashboard.router)
        app.include_router(campaigns.router, prefix=API_PREFIX)
        yield Service(app=app)
