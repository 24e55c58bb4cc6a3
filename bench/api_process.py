"""A real ``python -m services.api`` for a benchmark: its own database (migrated, seeded, dropped at the
end), its own topics (deleted at the end) and a free port.

    async with running_api(seed) as api:   # seed(conn) fills the fresh database first
        ... api.port, api.base_url, api.pid ...
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from deploy.stack import database_url, kafka_access
from harness.databases import create_database, drop_database
from harness.kafka import delete_topics_with_prefix, new_prefix
from harness.processes import free_port, stop_process, wait_ready
from libs.common.db import apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.topics import CAMPAIGN_DUE, CONSENT

T = TypeVar("T")


@dataclass(frozen=True)
class RunningApi:
    port: int
    pid: int
    seeded: object  # what the seed function returned

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running_api(seed: Callable[[asyncpg.Connection], Awaitable[T]]) -> AsyncIterator[RunningApi]:
    admin_url, kafka = database_url(), kafka_access()
    name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    prefix = new_prefix("bench")
    db_url = await create_database(name, server=admin_url)
    proc = None
    try:
        conn = await asyncpg.connect(db_url)
        try:
            await apply_migrations(conn)
            seeded = await seed(conn)
        finally:
            await conn.close()
        await ensure_topics(kafka, [CAMPAIGN_DUE, CONSENT], prefix=prefix)
        port = free_port()
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=db_url, TEXTPULSE_HTTP_PORT=str(port),
                   TEXTPULSE_TOPIC_PREFIX=prefix, **kafka.env(),
                   TEXTPULSE_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
        proc = subprocess.Popen([sys.executable, "-m", "services.api"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_ready("services.api", port, proc, timeout=60)
        yield RunningApi(port, proc.pid, seeded)
    finally:
        if proc is not None:
            stop_process(proc)
        await drop_database(name, server=admin_url)
        await delete_topics_with_prefix(kafka, prefix)


