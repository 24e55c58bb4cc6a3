"""A real ``python -m services.api`` for a benchmark: its own database (migrated, seeded, dropped at the
end), its own topics (deleted at the end) and a free port.

    async with running_api(seed) as api:   # seed(conn) fills the fresh database first
        ... api.port, api.base_url, api.pid ...
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from bench.audience import drop_database_at
from deploy.stack import database_url, kafka_access
from libs.common.db import apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess, client_kwargs
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_api(seed: Callable[[asyncpg.Connection], Awaitable[T]]) -> AsyncIterator[RunningApi]:
    admin_url, kafka = database_url(), kafka_access()
    name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    db_url = admin_url.rsplit("/", 1)[0] + "/" + name
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
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
        await wait_ready(port, proc)
        yield RunningApi(port, proc.pid, seeded)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await drop_database_at(admin_url, name)
        await delete_topics(kafka, prefix)


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"services.api exited with {proc.returncode}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if (await reader.read())[9:12] == b"200":
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("services.api did not become ready")


async def delete_topics(kafka: KafkaAccess, prefix: str) -> None:
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    await admin.start()
    try:
        await admin.delete_topics([name for spec in (CAMPAIGN_DUE, CONSENT)
                                   for name in (spec.full_name(prefix), spec.dlq_name(prefix))])
    finally:
        await admin.close()
