"""The API while PostgreSQL is unreachable: 503 problem+json with Retry-After, never a 500; /readyz names
the failing check and the kind of failure but not its text (that goes to the log)."""

from __future__ import annotations

import logging
import socket

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from libs.common.runtime import health_router
from services.api.main import create_app
from tests.integration.api_harness import api_settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns: nothing listens there


async def test_requests_get_503_while_the_database_is_unreachable() -> None:
    url = f"postgresql://textpulse:secret@127.0.0.1:{_closed_port()}/textpulse"
    pool = await asyncpg.create_pool(url, min_size=0, max_size=2)
    try:
        app = create_app(pool, api_settings(url, "127.0.0.1:1", "t."))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
            response = await client.get("/api/v1/campaigns", headers={"Cookie": "textpulse_session=anything"})
    finally:
        await pool.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "dependency_unavailable"


async def test_readyz_names_the_failing_check_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    async def postgres() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('10.1.2.3', 5432) as user secret_admin")

    async def kafka() -> None:
        return None

    app = FastAPI()
    app.include_router(health_router("api", {"postgres": postgres, "kafka": kafka}))
    with caplog.at_level(logging.WARNING, logger="libs.common.runtime"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"postgres": "failed: ConnectionRefusedError", "kafka": "ok"}
    assert "secret_admin" not in response.text
    assert any("secret_admin" in getattr(r, "error", "") for r in caplog.records)
