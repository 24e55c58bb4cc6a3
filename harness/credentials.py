"""Credentials as the services under test store them: sealed with the key they use (the default one).

    await conn.execute("INSERT INTO sms_accounts (...) VALUES ($1, $2, $3, ...)", org_id, sid, token, ...)
    await seal_credentials(conn)                   # every plain credential, as python -m deploy.migrate does
    sealed = await seal(conn, org_id, AUTH_TOKEN, "a new token")   # one value, for an UPDATE
"""

from __future__ import annotations

import uuid

import asyncpg

from libs.common.db import Connection
from libs.common.secret_store import SecretColumn, SecretStore, seal_plain_secrets
from libs.common.settings import Settings

# The services under test are built from Settings with TEXTPULSE_SECRET_KEY unset: the same key as this.
TEST_SECRETS = SecretStore.from_settings(Settings())


async def seal_credentials(conn: Connection | asyncpg.Pool) -> int:
    """Seal every credential still stored in plain text; returns how many were sealed."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired:
            return await seal_plain_secrets(acquired, TEST_SECRETS)
    return await seal_plain_secrets(conn, TEST_SECRETS)


async def seal(conn: Connection, org_id: uuid.UUID, column: SecretColumn, plaintext: str) -> str:
    return await TEST_SECRETS.seal(conn, org_id, column, plaintext)
