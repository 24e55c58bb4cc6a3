"""The whole platform as real processes for the chaos suite, and the two crashes it inflicts on them.

``ChaosStack`` runs the Twilio stand-in, the opt-out and usage services, the audience service and three
dispatchers, each ``python -m <module>`` with its log in the test's ``tmp_path``. ``replace_dispatcher``
is kill -9 and a fresh start in the same slot; ``kill_audience_mid_publish`` catches the audience
service between "Kafka acknowledged the batch" and "checkpoint written", and kills it there.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from asyncpg.transaction import Transaction

from harness.dispatch import TwilioStandin, start_dispatcher
from harness.processes import Process, free_port, wait_http
from libs.common.db import Connection
from tests.conftest import eventually

DISPATCHERS = 3


def start_service(name: str, module: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> Process:
    port = port or free_port()
    process = Process(name, [sys.executable, "-m", module], dict(env, TEXTPULSE_HTTP_PORT=str(port)), log_dir)
    process.url = f"http://127.0.0.1:{port}"
    return process


@dataclass
class ChaosStack:
    log_dir: Path
    env: dict[str, str]
    standin: TwilioStandin
    optout: Process | None = None
    usage: Process | None = None
    audience: Process | None = None
    dispatchers: list[Process] = field(default_factory=list)
    scheduler: Process | None = None  # only with ``whole=True``: then due runs are published by it
    api: Process | None = None
    kills: list[tuple[float, str]] = field(default_factory=list)  # (time, which process) of every kill -9
    # The Kafka variables of each service (its own user on an authenticating broker); none by default.
    kafka_env: Callable[[str], dict[str, str]] = lambda service: {}
    dispatcher_count: int = DISPATCHERS

    def env_of(self, service: str) -> dict[str, str]:
        return self.env | self.kafka_env(service)

    async def start(self, optout_port: int, *, whole: bool = False) -> None:
        """Start every service (the stand-in is already up), with the scheduler and the API if ``whole``;
        return once each answers /readyz."""
        self.optout = start_service("optout", "services.optout", self.env_of("optout"), self.log_dir, optout_port)
        self.usage = start_service("usage", "services.usage", self.env_of("usage"), self.log_dir)
        self.start_audience()
        self.dispatchers = [start_dispatcher(f"dispatcher-{i}", self.env_of("dispatcher"), self.log_dir)
                            for i in range(self.dispatcher_count)]
        if whole:
            self.scheduler = start_service("scheduler", "services.scheduler", self.env_of("scheduler"), self.log_dir)
            self.api = start_service("api", "services.api", self.env_of("api"), self.log_dir)
        await self.ready()

    def services(self) -> list[Process]:
        """The Textpulse processes running now (not the stand-in)."""
        every = [self.api, self.scheduler, self.optout, self.usage, self.audience, *self.dispatchers]
        return [p for p in every if p is not None]

    async def ready(self, timeout: float = 120) -> None:
        await asyncio.gather(wait_http(f"{self.standin.url}/healthz", timeout=timeout),
                             *(wait_http(f"{p.url}/readyz", timeout=timeout) for p in self.services()))

    def start_audience(self) -> None:
        self.audience = start_service("audience", "services.audience", self.env_of("audience"), self.log_dir)

    def replace_dispatcher(self, index: int) -> None:
        """kill -9 the dispatcher in slot ``index`` and start a new one there (same log file)."""
        self.dispatchers[index].kill()
        self.kills.append((time.time(), f"dispatcher-{index}"))
        self.dispatchers[index] = start_dispatcher(f"dispatcher-{index}", self.env_of("dispatcher"), self.log_dir)

    def stop(self) -> None:
        running = [p for p in [*self.dispatchers, self.audience, self.usage, self.optout, self.scheduler, self.api,
                               self.standin.process] if p is not None]
        for process in running:  # all asked at once: each may take seconds to close its connections
            process.terminate()
        for process in running:
            process.stop()


@dataclass(frozen=True)
class MidPublish:
    """Where the audience service was when it was killed: Kafka had the batch, the checkpoint did not."""

    published_through: int
    last_queued: int
    killed_at: float


async def kill_audience_mid_publish(stack: ChaosStack, database_url: str, pool: asyncpg.Pool,
                                    run_id: uuid.UUID) -> MidPublish | None:
    """kill -9 the audience service after Kafka acknowledged a batch of ``run_id`` and before its checkpoint.

    No hook in the service: the run's row is locked by this test the moment the snapshot commits (the
    loop below takes and drops the row lock until it finds the run 'sending'), so the service's first
    ``mark-published`` (written only after Kafka acknowledged the batch) waits on it; pg_stat_activity
    shows it waiting there when it is killed. Its backend is then terminated, so the checkpoint write dies
    with the process (as when the host goes) and the restarted service republishes the batch.

    Returns None, killing nothing, when the run was published before its row could be held.
    """
    holder = await asyncpg.connect(database_url)
    try:
        block = await _hold_when_sending(holder, run_id)
        through = await holder.fetchval("SELECT published_through FROM campaign_runs WHERE id = $1", run_id)
        last = await holder.fetchval(
            "SELECT max(position) FROM run_recipients WHERE run_id = $1 AND status = 'queued'", run_id)
        if through >= last:
            await block.rollback()
            return None
        stuck = await eventually(lambda: pool.fetchval(
            """SELECT pid FROM pg_stat_activity WHERE datname = current_database()
               AND wait_event_type = 'Lock' AND query LIKE '%published_through = greatest%'"""), timeout=20)
        assert stack.audience is not None
        stack.audience.kill()
        killed_at = time.time()
        stack.kills.append((killed_at, "audience"))
        await pool.execute("SELECT pg_terminate_backend($1)", stuck)
        await block.rollback()
    finally:
        await holder.close()
    return MidPublish(through, last, killed_at)


async def _hold_when_sending(conn: Connection, run_id: uuid.UUID,
                             timeout: float = 30.0) -> Transaction:
    """Return an open transaction holding the run's row lock, taken as the run turns 'sending'.

    While the run is still pending or resolving the lock is dropped at once (the service waits a
    millisecond at most); a lock requested while the snapshot transaction holds the row is granted the
    moment it commits, ahead of the service's checkpoint write, which comes only after Kafka's ack.
    """
    deadline = time.monotonic() + timeout
    while True:
        block = conn.transaction()
        await block.start()
        state = await conn.fetchval("SELECT state FROM campaign_runs WHERE id = $1 FOR UPDATE", run_id)
        if state == "sending":
            return block
        await block.rollback()
        if state not in ("pending", "resolving") or time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} never turned 'sending' (state {state!r})")
        await asyncio.sleep(0.001)
