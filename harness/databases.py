"""Databases of their own on the PostgreSQL a test session or a benchmark is given.

``TEXTPULSE_TEST_DATABASE_URL`` names the server (``make test`` sets it); without it, the local default.
"""

from __future__ import annotations

import os

import asyncpg

DEFAULT_DATABASE_URL = "postgresql://textpulse:textpulse@127.0.0.1:55432/textpulse"


def admin_url() -> str:
    return os.environ.get("TEXTPULSE_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def create_database(name: str, *, server: str | None = None) -> str:
    """Create database ``name`` on ``server`` (a URL of any database there; the test server by default);
    returns the new database's URL."""
    server = server or admin_url()
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server, name)


async def drop_database(name: str, *, server: str | None = None) -> None:
    conn = await asyncpg.connect(server or admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
