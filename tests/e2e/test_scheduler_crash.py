"""kill -9 of a real ``python -m services.scheduler`` between claim and publish: still one event per run.

No test hook in the scheduler: the test holds a SHARE lock on campaign_audit, which the scheduler
writes after claiming a run (FOR UPDATE) and before sending its event, so the process is provably stuck
there (pg_stat_activity shows it waiting, inside a transaction that holds row locks) when it is killed.
The lock is taken only once the process is up: preparing its statements at start needs the table too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from deploy.stack import REPO
from harness import factories
from harness.kafka import records_to_end
from harness.processes import free_port
from libs.common.db import Connection
from libs.common.topics import CAMPAIGN_DUE
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster


@pytest.fixture
async def topic(kafka: KafkaCluster, topic_prefix: str) -> str:
    await kafka.prepare([CAMPAIGN_DUE], prefix=topic_prefix)
    return CAMPAIGN_DUE.full_name(topic_prefix)


@pytest.fixture
def scheduler_env(database_url: str, kafka: KafkaCluster, topic_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTPULSE_") and "KAFKA_BOOTSTRAP" not in k}
    return env | kafka.service_env("scheduler") | {"TEXTPULSE_DATABASE_URL": database_url,
                  "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_ENV": "test", "TEXTPULSE_LOG_FORMAT": "text"}


class SchedulerProcess(subprocess.Popen[bytes]):
    port: int


@contextmanager
def scheduler_process(env: dict[str, str], log: Path) -> Iterator[SchedulerProcess]:
    port = free_port()
    with log.open("ab") as out:
        process = SchedulerProcess([sys.executable, "-m", "services.scheduler"], cwd=REPO, stdout=out, stderr=out,
                                   env=env | {"TEXTPULSE_HTTP_PORT": str(port)})
    process.port = port
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def holder(database_url: str) -> AsyncIterator[Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def read_events(kafka: KafkaCluster, topic: str) -> list[dict]:
    """Every event on ``topic`` up to its end offsets."""
    return [json.loads(r.value) for r in await records_to_end(kafka.admin, {topic: CAMPAIGN_DUE.partitions})]


async def test_kill_9_between_claim_and_publish_yields_exactly_one_event(
    db_pool: asyncpg.Pool, holder: Connection, kafka: KafkaCluster, topic: str,
    scheduler_env: dict[str, str], tmp_path: Path,
) -> None:
    await db_pool.execute("DELETE FROM campaigns")  # the scheduler takes any organisation's due runs
    org = await factories.make_org(db_pool, slug=factories.new_slug("crash"), name="Crash test")
    campaign = await factories.make_campaign(db_pool, org, name="Gala", body="Tonight!", state="scheduled")
    log = tmp_path / "scheduler.log"

    with scheduler_process(scheduler_env, log) as first:
        # Up once it answers /healthz; its statements were prepared (which takes the table lock) by then.
        await eventually(lambda: _answers(first.port), timeout=30)
        block = holder.transaction()
        await block.start()
        try:
            await holder.execute("LOCK TABLE campaign_audit IN SHARE MODE")  # SELECTs pass, INSERTs wait
            run = await factories.make_run(db_pool, org, campaign)
            # Claimed (a transaction that holds row locks has an xid) and stuck before the publish.
            await eventually(lambda: db_pool.fetchval(
                """SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database()
                   AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL
                   AND query LIKE 'INSERT INTO campaign_audit%'"""), timeout=30)
            async with db_pool.acquire() as probe:
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await probe.fetchval("SELECT id FROM campaign_runs WHERE id = $1 FOR UPDATE NOWAIT", run)
            assert await read_events(kafka, topic) == []
            first.kill()
            assert first.wait(timeout=10) == -signal.SIGKILL
        finally:
            await block.rollback()

    with scheduler_process(scheduler_env, log) as second:
        published = await eventually(lambda: db_pool.fetchrow(
            "SELECT published_by FROM campaign_runs WHERE id = $1 AND published_at IS NOT NULL", run), timeout=30)
        assert published["published_by"].endswith(f":{second.pid}"), log.read_text()[-3000:]

    events = await read_events(kafka, topic)
    assert [e["run_id"] for e in events] == [str(run)], log.read_text()[-3000:]
    assert events[0]["campaign_id"] == str(campaign)
    assert await db_pool.fetchval("SELECT state FROM campaigns WHERE id = $1", campaign) == "sending"
    audit = await db_pool.fetch("SELECT action, from_state, to_state FROM campaign_audit WHERE run_id = $1", run)
    assert [tuple(a) for a in audit] == [("run_published", "scheduled", "sending")]  # the kill left nothing


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
