"""A PostgreSQL and a Kafka broker of the chaos suite's own, which its tests may restart and kill.

The shared PostgreSQL and Kafka (the ones ``make test`` starts) are never touched: this pair runs from
the stack's own scripts (deploy/local/postgres.sh, kafka.sh) on ports chosen free for the run, with its data
in a directory of the run's own under ``var/runs/``, removed by ``stop`` (harness/private_servers.py).
``TEXTPULSE_CHAOS_PG_PORT``, ``TEXTPULSE_CHAOS_KAFKA_PORT``, ``TEXTPULSE_CHAOS_KAFKA_CONTROLLER_PORT`` and
``TEXTPULSE_CHAOS_VAR_DIR`` fix them (a directory given so is kept, and a broker found running in it reused).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time

import asyncpg

from deploy.stack import REPO, VAR, wait_for_kafka
from harness.private_postgres import PrivatePostgres
from harness.private_servers import RunDir, running, server_port
from libs.common.kafka_security import KafkaAccess

SHARED_PORTS = {55432, 19092, 19093}  # the shared stack's: refused here, whatever the environment says


class PrivateInfra:
    def __init__(self) -> None:
        self._dir = RunDir.create("chaos", "TEXTPULSE_CHAOS_VAR_DIR")
        self.var = self._dir.path
        self.pg_port = server_port("TEXTPULSE_CHAOS_PG_PORT")
        self.kafka_port = server_port("TEXTPULSE_CHAOS_KAFKA_PORT")
        self.controller_port = server_port("TEXTPULSE_CHAOS_KAFKA_CONTROLLER_PORT")
        if SHARED_PORTS & {self.pg_port, self.kafka_port, self.controller_port}:
            raise ValueError(f"the chaos suite's ports {self.pg_port}, {self.kafka_port}, {self.controller_port} "
                             f"must not be the shared stack's {sorted(SHARED_PORTS)}")
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.postgres = PrivatePostgres(self.var, self.pg_port)
        self._env = {k: v for k, v in os.environ.items() if "KAFKA_BOOTSTRAP_SERVERS" not in k}
        self._env.update(TEXTPULSE_VAR_DIR=str(self.var), TEXTPULSE_PG_PORT=str(self.pg_port),
                         TEXTPULSE_KAFKA_PORT=str(self.kafka_port),
                         TEXTPULSE_KAFKA_CONTROLLER_PORT=str(self.controller_port),
                         TEXTPULSE_KAFKA_LIBS=os.environ.get("TEXTPULSE_KAFKA_LIBS", str(VAR / "kafka" / "libs")))

    # -- PostgreSQL (harness/private_postgres.py runs it) --------------------------------------------

    async def stop_postgres(self, mode: str) -> None:
        """``pg_ctl stop -m fast`` (sessions are ended, a clean shutdown) or ``-m immediate`` (a crash: the
        next start recovers from the WAL)."""
        await self.postgres.stop(mode)

    async def start_postgres(self) -> None:
        await self.postgres.start()
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = await asyncpg.connect(self.postgres.url(), timeout=5)
                await conn.close()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    # -- Kafka -------------------------------------------------------------------------------------

    async def start_kafka(self) -> None:
        await asyncio.to_thread(self._script, "kafka.sh")
        await wait_for_kafka(KafkaAccess(self.bootstrap), timeout=180)

    def _kafka_pid(self) -> int | None:
        pidfile = self.var / "run" / "kafka.pid"
        if not pidfile.exists():
            return None
        pid = int(pidfile.read_text())
        return pid if running(pid) else None

    async def kill_kafka(self) -> None:
        """kill -9 the broker (no controlled shutdown: its logs are recovered at the next start)."""
        pid = self._kafka_pid()
        assert pid is not None, "the chaos broker is not running"
        os.kill(pid, signal.SIGKILL)
        assert await _gone(pid, 120), f"the killed broker (pid {pid}) has not ended"

    # -- both --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start both; a broker not running already starts on empty storage, so that the topics of earlier
        sessions do not lengthen every restart's log recovery."""
        await self.start_postgres()
        if self._kafka_pid() is None:
            shutil.rmtree(self.var / "kafka" / "data", ignore_errors=True)
        await self.start_kafka()

    async def stop(self) -> None:
        """Stop both and delete the run's data. The broker is killed: its storage goes anyway."""
        pid = self._kafka_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            await _gone(pid, 30)
        await self.postgres.remove()
        self._dir.remove()

    def _script(self, script: str) -> None:
        done = subprocess.run(["bash", str(REPO / "deploy" / "local" / script)], env=self._env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


async def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True
