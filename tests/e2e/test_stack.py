"""The whole stack from scratch through the README's own script, in a var/ and on ports of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack import REPO, VAR
from harness.processes import free_port, free_port_base
from tests.kafka_cluster import KafkaCluster, sasl_requested

SERVICES = ["api", "optout", "scheduler", "audience", "usage", "links", "events", "dispatcher"]


@pytest.fixture(scope="module")
def stack_env() -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TEXTPULSE_") and "KAFKA_BOOTSTRAP_SERVERS" not in k}
    kafka_port = free_port()
    env.update(
        TEXTPULSE_VAR_DIR=str(VAR / f"e2e-{uuid.uuid4().hex[:8]}"),
        TEXTPULSE_PG_PORT=str(free_port()),
        TEXTPULSE_KAFKA_PORT=str(kafka_port),
        TEXTPULSE_KAFKA_CONTROLLER_PORT=str(free_port()),  # kafka_port + 1 may be taken: pick it free too
        TEXTPULSE_KAFKA_LIBS=str(VAR / "kafka" / "libs"),
        TEXTPULSE_PORT_BASE=str(free_port_base()),
    )
    if sasl_requested():  # the stack then runs its broker with TLS, SCRAM users and ACLs, as a user would
        env["TEXTPULSE_KAFKA_SECURITY_PROTOCOL"] = "SASL_SSL"
    yield env
    subprocess.run([sys.executable, "-m", "deploy.stack", "down", "--wipe"], cwd=REPO, env=env, check=False)


def _stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.stack", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def _pids(var: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text().split()[0]) for p in (var / "run").glob("*.pid")}


def test_the_stack_comes_up_from_scratch_answers_and_stops_what_it_started(stack_env: dict[str, str]) -> None:
    var, base = Path(stack_env["TEXTPULSE_VAR_DIR"]), int(stack_env["TEXTPULSE_PORT_BASE"])

    started = _stack(stack_env, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"Dashboard: http://127.0.0.1:{base}/" in started.stdout

    status, page = _get(f"http://127.0.0.1:{base}/sign-in")
    assert status == 200 and "Textpulse" in page
    for port in [base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 11, base + 12]:
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        ready = json.loads(body)
        assert status == 200 and ready["checks"] == {"postgres": "ok", "kafka": "ok"}, body
    service_ports = [base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 11]
    assert {json.loads(_get(f"http://127.0.0.1:{p}/healthz")[1])["service"] for p in service_ports} == set(SERVICES)

    again = _stack(stack_env, "up")  # idempotent: reuses what runs
    assert again.returncode == 0 and "already running" in again.stdout

    pids = _pids(var)
    assert {"postgres", "kafka", "api", "dispatcher-1", "dispatcher-2"} <= set(pids)
    stopped = _stack(stack_env, "down")
    assert stopped.returncode == 0, stopped.stderr
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], name
    assert (var / "pg").exists() and (var / "kafka" / "data").exists()  # data kept unless --wipe


def test_a_service_with_a_bad_setting_stops_at_start_naming_the_variable() -> None:
    env = dict(os.environ, TEXTPULSE_HTTP_PORT="eighty", TEXTPULSE_KAFKA_REPLICATION_FACTOR="0")
    result = subprocess.run([sys.executable, "-m", "services.scheduler"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "TEXTPULSE_HTTP_PORT='eighty'" in result.stderr
    assert "TEXTPULSE_KAFKA_REPLICATION_FACTOR" in result.stderr


def test_a_service_whose_topics_are_missing_stops_at_start(kafka: KafkaCluster, database_url: str) -> None:
    env = dict(os.environ, **kafka.service_env("dispatcher"), TEXTPULSE_DATABASE_URL=database_url,
               TEXTPULSE_TOPIC_PREFIX="never-created.", TEXTPULSE_HTTP_PORT=str(free_port()))
    result = subprocess.run([sys.executable, "-m", "services.dispatcher"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "never-created.textpulse.recipients (expected 12, found none)" in result.stderr
