"""Some of the API's routers on a bare app over the test database, reached in-process: what the API does,
without its sign-in pages, middleware or other routers.

    async with bare_api(db_pool, inbox.router) as api:
        await api.get("/api/v1/inbox", headers={"Authorization": f"Bearer {key}"})
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
from fastapi import APIRouter, FastAPI

from harness.credentials import TEST_SECRETS
from services.api.deps import WebConfig
from services.api.errors import install_problem_handler


@asynccontextmanager
async def bare_api(pool: asyncpg.Pool, *routers: APIRouter,
                   web: WebConfig | None = None) -> AsyncIterator[httpx.AsyncClient]:
    web = web or WebConfig(public_base_url="http://api.test")
    app = FastAPI()
    app.state.pool = pool
    app.state.web = web
    app.state.secrets = TEST_SECRETS
    install_problem_handler(app)
    for router in routers:
        app.include_router(router, prefix="/api/v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=web.public_base_url) as client:
        yield client
