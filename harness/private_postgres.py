"""A PostgreSQL of a test's own, which it may stop and start: never the shared one.

Started with the stack's own script (``deploy/local/postgres.sh``) on a port chosen free for the run and a
data directory of the run's own under ``var/runs/`` (harness/private_servers.py), so two suites on one
machine never share it; ``TEXTPULSE_TEST_PRIVATE_PG_PORT`` and ``TEXTPULSE_TEST_PRIVATE_PG_VAR`` fix them
(a directory given so is kept). ``stop`` is a fast shutdown, as ``pg_ctl restart -m fast`` does, and
``start`` brings it back; ``remove`` stops it for good and deletes its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from pathlib import Path

import asyncpg

from deploy.stack import REPO
from harness.private_servers import RunDir, server_port
from libs.common.db import apply_migrations


class PrivatePostgres:
    """``var`` and ``port`` given: the caller's (it removes the directory); otherwise this run's own."""

    def __init__(self, var: Path | None = None, port: int | None = None) -> None:
        self._dir = RunDir(var, owned=False) if var else RunDir.create("pg", "TEXTPULSE_TEST_PRIVATE_PG_VAR")
        self.var = self._dir.path
        self.port = port or server_port("TEXTPULSE_TEST_PRIVATE_PG_PORT")

    def url(self, database: str = "textpulse") -> str:
        return f"postgresql://textpulse:textpulse@127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        env = dict(os.environ, TEXTPULSE_VAR_DIR=str(self.var), TEXTPULSE_PG_PORT=str(self.port))
        await asyncio.to_thread(subprocess.run, ["bash", str(REPO / "deploy/local/postgres.sh")], check=True,
                                env=env, capture_output=True, timeout=300)

    async def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: as a restart does; ``immediate``: as a crash) and wait until it is down."""
        await asyncio.to_thread(subprocess.run, [*self._as_postgres(), f"{self._bin()}/pg_ctl", "-D",
                                                 self._data(), "-m", mode, "-w", "-t", "120", "stop"],
                                check=True, capture_output=True, timeout=180)

    async def remove(self) -> None:
        """Stop the server if it runs, and delete the run's data directory."""
        if (self.var / "pg" / "DATA_DIR").exists():
            with contextlib.suppress(subprocess.CalledProcessError):  # not running
                await self.stop()
        self._dir.remove()

    async def create_database(self) -> str:
        """A fresh database with every migration applied; returns its URL."""
        name = f"textpulse_test_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.url(name))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()

    def _data(self) -> str:
        return (self.var / "pg" / "DATA_DIR").read_text().strip()

    @staticmethod
    def _bin() -> str:
        return sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1].as_posix()

    @staticmethod
    def _as_postgres() -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
