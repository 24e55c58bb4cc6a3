"""Scheduler: turns due campaign schedules into campaign-due events.

Wiring only: settings, connections, the named queries (checked at start), the web app with /healthz
and /readyz, and the scheduling loop (``loop.py``) as the service's worker.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common import run_endings
from libs.common.connections import open_connections
from libs.common.runtime import Service, health_router
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE
from services.scheduler import db
from services.scheduler.loop import Scheduler, run_forever

NAME = "scheduler"
# How often an idle scheduler looks for due work: the worst-case delay of a send-now.
POLL_INTERVAL_S = 1.0


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    async with open_connections(settings, [CAMPAIGN_DUE]) as conn:
        async with conn.pool.acquire() as check:
            await db.QUERIES.check(check)
            await run_endings.QUERIES.check(check)
        scheduler = Scheduler(pool=conn.pool, publisher=conn.publisher,
                              instance=f"{socket.gethostname()}:{os.getpid()}")
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        yield Service(app=app, workers=[functools.partial(run_forever, scheduler, interval_s=POLL_INTERVAL_S)])
