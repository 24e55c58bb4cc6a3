"""kill -9 of a real ``python -m services.audience`` mid-publish, or mid-read, then a restart: every recipient
still once.

The iMIS stand-in runs as a process with 20,000 members. No test hook in the service: once the run is
'sending' (snapshot committed), the test holds the run's row lock, so the first ``mark-published`` (the
checkpoint written after Kafka acknowledged a batch) waits on it; pg_stat_activity proves the process is
stuck there when it is killed. Its checkpoint write dies with it (the backend is terminated, as when the
host goes), so the restarted process finds a batch on the topic that the checkpoint does not cover.

The guarantee checked is the design's: publishing is at-least-once ("send the batch, then move the
checkpoint"), so every queued recipient is on the topic, nobody else is, and the only repeats are the one
batch whose checkpoint the kill lost; the dispatcher's ledger on (run_id, recipient_id) makes a repeat a
no-op, so no member is texted twice (tests/e2e/test_dispatcher.py). Exactly once *on the topic* would need
the audience service to read back what Kafka holds for the run on resume; it is not required.

Killed while it is still reading the IQA into the run's stage (a temporary table of its session), the
process leaves nothing behind: no snapshot row, no event; the restarted one reads the audience again and
publishes each recipient exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from deploy.stack import REPO
from harness import factories
from harness.kafka import records_to_end, running_publisher
from harness.processes import free_port
from libs.common.events import CampaignDue
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(90)

BODY = "Hi {{first_name|there}}, renewals open today. Reply STOP to opt out."


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=out, stderr=out,
                                env=env | {"TEXTPULSE_HTTP_PORT": str(port)})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def recipient_ids(kafka: KafkaCluster, topic: str, run_id: uuid.UUID) -> Counter[str]:
    """How many events each recipient id of the run has on ``topic``, up to its end offsets."""
    counts: Counter[str] = Counter()
    for record in await records_to_end(kafka.admin, {topic: RECIPIENTS.partitions}):
        event = json.loads(record.value)
        if event["run_id"] == str(run_id):
            counts[event["recipient_id"]] += 1
    return counts


async def seed_run(pool: asyncpg.Pool, imis_url: str) -> CampaignDue:
    async with pool.acquire() as conn, conn.transaction():
        org_id = await factories.make_org(conn, slug=factories.new_slug("ac"), name="Crash test")
        await factories.make_sms_account(conn, org_id, auth_token="x", webhook_base_url="https://t.example")
        await factories.make_sender(conn, org_id, verification="verified", is_default=True)
        await factories.make_imis_account(conn, org_id, base_url=imis_url)
        campaign_id = await factories.make_campaign(
            conn, org_id, body=BODY, audience={"kind": "iqa", "query": "$/Textpulse/SMS Audience"},
            segment_limit=1000000, state="sending")
        when = datetime.now(UTC)
        run_id = await factories.make_run(conn, org_id, campaign_id, occurrence_at=when)
    return CampaignDue(org_id=org_id, campaign_id=campaign_id, run_id=run_id, scheduled_for=when)


async def test_kill_9_mid_publish_then_restart_publishes_each_recipient_once(
    db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str, tmp_path: Path,
) -> None:
    await kafka.prepare([CAMPAIGN_DUE, RECIPIENTS], prefix=topic_prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTPULSE_", "IMIS_STANDIN_"))}
    imis_port = free_port()
    imis_url = f"http://127.0.0.1:{imis_port}"
    env |= kafka.service_env("audience") | {"TEXTPULSE_DATABASE_URL": database_url,
            "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_ENV": "test", "TEXTPULSE_LOG_FORMAT": "text",
            "TEXTPULSE_IMIS_BASE_URL": imis_url}
    log = tmp_path / "audience.log"
    topic = RECIPIENTS.full_name(topic_prefix)
    audience = ["services.audience"]

    with process(["standins.imis", "--port", str(imis_port), "--dataset", "20000"], env, tmp_path / "imis.log",
                 imis_port):
        await eventually(lambda: _answers(imis_port), timeout=30)
        event = await seed_run(db_pool, imis_url)
        run = event.run_id
        holder = await asyncpg.connect(database_url)
        try:
            port = free_port()
            with process(audience, env, log, port) as first:
                await eventually(lambda: _answers(port), timeout=30)
                async with running_publisher(kafka.user("scheduler"), topic_prefix) as (publisher, _):
                    await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))
                await eventually(lambda: db_pool.fetchval(
                    "SELECT state = 'sending' FROM campaign_runs WHERE id = $1", run), timeout=30, interval=0.005)
                block = holder.transaction()
                await block.start()
                await holder.execute("SELECT 1 FROM campaign_runs WHERE id = $1 FOR UPDATE", run)
                stuck = await eventually(lambda: db_pool.fetchval(
                    """SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                       AND wait_event_type = 'Lock' AND query LIKE '%published_through%'"""), timeout=20)
                published_through = await holder.fetchval(
                    "SELECT published_through FROM campaign_runs WHERE id = $1", run)
                last = await db_pool.fetchval(
                    "SELECT max(position) FROM run_recipients WHERE run_id = $1 AND status = 'queued'", run)
                assert published_through < last  # mid-publish: queued rows are still past the checkpoint
                on_topic = await recipient_ids(kafka, topic, run)
                assert on_topic  # a batch Kafka acknowledged, whose checkpoint is waiting on the lock
                first.kill()
                assert first.wait(timeout=10) == -signal.SIGKILL
                await db_pool.execute("SELECT pg_terminate_backend($1)", stuck)  # its checkpoint write is lost
                await block.rollback()

            with process(audience, env, log, free_port()):
                # The restarted consumer gets campaign-due again (its offset was never committed).
                await eventually(lambda: db_pool.fetchval(
                    """SELECT r.published_through >= max(s.position) FROM campaign_runs r
                       JOIN run_recipients s ON s.run_id = r.id AND s.status = 'queued'
                       WHERE r.id = $1 GROUP BY r.published_through""", run), timeout=40)
        finally:
            await holder.close()

    queued = {str(r) for r in await db_pool.fetchval(
        "SELECT array_agg(recipient_id) FROM run_recipients WHERE run_id = $1 AND status = 'queued'", run)}
    counts = await recipient_ids(kafka, topic, run)
    row = await db_pool.fetchrow("SELECT state, targeted FROM campaign_runs WHERE id = $1", run)
    assert (row["state"], row["targeted"]) == ("sending", len(queued)), log.read_text()[-3000:]
    assert len(queued) > 5_000
    assert set(counts) == queued  # nobody lost, nobody extra
    doubled = {rid for rid, n in counts.items() if n != 1}
    assert doubled <= set(on_topic) and max(counts.values()) <= 2  # at most the batch the checkpoint missed


def _control(imis_url: str, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{imis_url}/_control/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def _slow_pages_served(imis_url: str) -> int:
    faults = _control(imis_url, "GET", "faults")["faults"]
    assert isinstance(faults, list)
    return sum(int(f["fired"]) for f in faults)


async def test_kill_9_mid_read_leaves_nothing_and_the_restart_publishes_each_recipient_once(
    db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str, tmp_path: Path,
) -> None:
    await kafka.prepare([CAMPAIGN_DUE, RECIPIENTS], prefix=topic_prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTPULSE_", "IMIS_STANDIN_"))}
    imis_port = free_port()
    imis_url = f"http://127.0.0.1:{imis_port}"
    env |= kafka.service_env("audience") | {"TEXTPULSE_DATABASE_URL": database_url,
            "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_ENV": "test", "TEXTPULSE_LOG_FORMAT": "text",
            "TEXTPULSE_IMIS_BASE_URL": imis_url}
    log = tmp_path / "audience.log"
    topic = RECIPIENTS.full_name(topic_prefix)

    with process(["standins.imis", "--port", str(imis_port), "--dataset", "20000"], env, tmp_path / "imis.log",
                 imis_port):
        await eventually(lambda: _answers(imis_port), timeout=30)
        # Every IQA page answers after 0.2 s: the 32 pages take the first process long enough to be killed
        # mid-read, after it has copied some of them into its stage (every 10 pages).
        _control(imis_url, "POST", "faults", {"kind": "slow", "path": "/api/IQA", "delay_seconds": 0.2,
                                              "share": 1.0})
        event = await seed_run(db_pool, imis_url)
        run = event.run_id
        port = free_port()
        with process(["services.audience"], env, log, port) as first:
            await eventually(lambda: _answers(port), timeout=30)
            async with running_publisher(kafka.user("scheduler"), topic_prefix) as (publisher, _):
                await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))
            await eventually(lambda: _slow_pages_served(imis_url) >= 14, timeout=60, interval=0.02)
            first.kill()
            assert first.wait(timeout=10) == -signal.SIGKILL
        row = await db_pool.fetchrow("SELECT state, targeted FROM campaign_runs WHERE id = $1", run)
        assert row is not None and (row["state"], row["targeted"]) == ("resolving", 0)
        assert await db_pool.fetchval("SELECT count(*) FROM run_recipients WHERE run_id = $1", run) == 0
        assert await recipient_ids(kafka, topic, run) == Counter()

        _control(imis_url, "DELETE", "faults")
        with process(["services.audience"], env, log, free_port()):
            await eventually(lambda: db_pool.fetchval(
                """SELECT r.published_through >= max(s.position) FROM campaign_runs r
                   JOIN run_recipients s ON s.run_id = r.id AND s.status = 'queued'
                   WHERE r.id = $1 GROUP BY r.published_through""", run), timeout=60)

    queued = {str(r) for r in await db_pool.fetchval(
        "SELECT array_agg(recipient_id) FROM run_recipients WHERE run_id = $1 AND status = 'queued'", run)}
    rows = await db_pool.fetchval("SELECT count(*) FROM run_recipients WHERE run_id = $1", run)
    counts = await recipient_ids(kafka, topic, run)
    row = await db_pool.fetchrow("SELECT state, targeted, excluded FROM campaign_runs WHERE id = $1", run)
    assert row is not None
    assert (row["state"], row["targeted"], row["targeted"] + row["excluded"]) == ("sending", len(queued), rows)
    assert rows > 15_000 and len(queued) > 12_000, log.read_text()[-3000:]
    assert set(counts) == queued and set(counts.values()) == {1}  # each recipient exactly once
