"""A member's STOP and START, from the Twilio stand-in's "member replies" control through the real opt-out
service process: Twilio's signed webhook in, the suppression table and consent history out."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import asyncpg

from harness.dispatch import TwilioStandin, seed_run
from harness.processes import Process, free_port, wait_http
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDER = "+18885550120"
MEMBER = "+14155550199"


async def test_stop_suppresses_the_member_within_a_second_and_start_lifts_it(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    optout_port = free_port()
    optout_url = f"http://127.0.0.1:{optout_port}"
    standin = TwilioStandin(tmp_path, [SENDER], inbound_url=f"{optout_url}/twilio/inbound")
    run = await seed_run(db_pool, standin, [SENDER], 0, rng=random.Random(1))
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE sms_accounts SET webhook_base_url = $2 WHERE org_id = $1", run.org_id, optout_url)
    env = {"TEXTPULSE_DATABASE_URL": database_url, **kafka.service_env("optout"),
           "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_HTTP_PORT": str(optout_port),
           "TEXTPULSE_LOG_FORMAT": "text"}
    optout = Process("optout", [sys.executable, "-m", "services.optout"], dict(os.environ, **env), tmp_path)
    try:
        await wait_http(f"{standin.url}/healthz")
        await wait_http(f"{optout_url}/readyz")

        await standin.reply(MEMBER, SENDER, "Stop")  # how soon STOPs apply under load: python -m bench.webhooks
        await eventually(lambda: _suppressed(db_pool, run.org_id), timeout=10, interval=0.02)
        history = await _history(db_pool, run.org_id)
        assert history and {h["action"] for h in history} == {"opt_out"} and history[0]["source"] == "keyword"

        await standin.reply(MEMBER, SENDER, "START")
        await eventually(lambda: _lifted(db_pool, run.org_id), timeout=10, interval=0.05)
        assert {h["action"] for h in await _history(db_pool, run.org_id)} == {"opt_out", "opt_in"}
    finally:
        optout.stop()
        standin.process.stop()


async def _suppressed(pool: asyncpg.Pool, org_id: object) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM suppressions WHERE org_id = $1 AND phone = $2",
                                   org_id, MEMBER) > 0


async def _lifted(pool: asyncpg.Pool, org_id: object) -> bool:
    return not await _suppressed(pool, org_id)


async def _history(pool: asyncpg.Pool, org_id: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM consent_history WHERE org_id = $1 AND phone = $2 ORDER BY 1",
                                org_id, MEMBER)
