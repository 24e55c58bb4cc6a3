"""``python -m deploy.migrate``: apply the numbered migrations to TEXTPULSE_DATABASE_URL and exit."""

from __future__ import annotations

import asyncio

import asyncpg

from libs.common.db import apply_migrations
from libs.common.settings import load_settings


async def main() -> None:
    conn = await asyncpg.connect(load_settings().database_url)
    try:
        applied = await apply_migrations(conn)
    finally:
        await conn.close()
    print(f"migrations applied now: {applied or 'none (up to date)'}")


if __name__ == "__main__":
    asyncio.run(main())
