"""``python -m deploy.migrate``: apply the numbered migrations to TEXTPULSE_DATABASE_URL, make PostgreSQL's
copy of the state transition tables equal to the Python ones, seal any credential still stored in plain
text, and exit.

Sealing is a step of its own, not a migration: it needs the key-encryption key (TEXTPULSE_SECRET_KEY or
its file), which SQL does not have. It runs here, before any service starts, rather than at a service's
boot, so that no service ever reads a plain credential and none has to race another to seal it.
Idempotent: a sealed value is left as it is.
"""

from __future__ import annotations

import asyncio

import asyncpg

from libs.common.db import Connection, apply_migrations
from libs.common.secret_store import SecretStore, seal_plain_secrets
from libs.common.settings import Settings, load_settings
from libs.common.state_tables import sync_state_transitions


async def migrate(conn: Connection, settings: Settings) -> tuple[list[int], int]:
    """(the migrations applied now, how many plain credentials were sealed now).

    The transition tables are checked and rewritten where they differ from Python (``state_tables.py``)
    before anything else can write a state.
    """
    applied = await apply_migrations(conn)
    await sync_state_transitions(conn)
    sealed = await seal_plain_secrets(conn, SecretStore.from_settings(settings))
    return applied, sealed


async def main() -> None:
    settings = load_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied, sealed = await migrate(conn, settings)
    finally:
        await conn.close()
    print(f"migrations applied now: {applied or 'none (up to date)'}; credentials sealed now: {sealed}")


if __name__ == "__main__":
    asyncio.run(main())
