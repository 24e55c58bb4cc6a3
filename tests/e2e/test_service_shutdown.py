"""SIGTERM to each service process: it drains (readiness off, consumers finish and commit, pollers cancelled),
leaves its Kafka group and exits 0 within its drain time, as Kubernetes asks of a pod."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.dispatch import TwilioStandin, dispatcher_env
from harness.processes import Process, wait_http
from libs.common.topics import ALL_TOPICS
from tests.chaos.processes import start_service
from tests.kafka_cluster import KafkaCluster

SERVICES = ["api", "audience", "optout", "scheduler", "usage", "dispatcher"]
DRAIN_S = 10
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, ["+18885551300"])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


def _exit_code(process: Process) -> int | None:
    try:
        return process.proc.wait(timeout=DRAIN_S + 15)  # the pod's grace period: past it, SIGKILL
    except subprocess.TimeoutExpired:
        return None


async def test_every_service_drains_and_exits_0_on_sigterm(
    tmp_path: Path, standin: TwilioStandin, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    processes = []
    for name in SERVICES:
        env = dict(dispatcher_env(database_url, kafka.user(name), topic_prefix, standin),
                   TEXTPULSE_DRAIN_SECONDS=str(DRAIN_S), TEXTPULSE_IMIS_BASE_URL="http://127.0.0.1:9")
        processes.append(start_service(name, f"services.{name}", env, tmp_path))
    try:
        await asyncio.gather(*(wait_http(f"{p.url}/readyz", timeout=180) for p in processes))
        for process in processes:
            process.terminate()
        codes = await asyncio.gather(*(asyncio.to_thread(_exit_code, p) for p in processes))
    finally:
        for process in processes:
            process.stop()
    for process, code in zip(processes, codes, strict=True):
        log = process.log_path.read_text()
        assert code == 0, f"{process.name} exited {code}: {process.log_path}"
        assert "service.draining" in log and "service.drained" in log, f"{process.name}: {process.log_path}"
        assert "worker.crashed" not in log, f"{process.name}: {process.log_path}"
