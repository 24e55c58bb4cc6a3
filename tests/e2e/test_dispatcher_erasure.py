"""A member erased while their run is being sent: a real dispatcher process never texts them, does not
dead-letter their record (the erasure ended them in the ledger itself), and the run still completes, even
when an erased member's record is the last one it reads."""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg

from harness.credentials import TEST_SECRETS
from harness.dispatch import TwilioStandin, dispatcher_env, publish_recipients, seed_run, start_dispatcher
from harness.kafka import read_topic, running_publisher
from harness.processes import wait_http
from libs.common.topics import ALL_TOPICS, RECIPIENTS
from services.api import erasure
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDER = "+18885550150"


async def test_an_erased_member_of_a_live_run_is_never_texted_and_the_run_completes(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    standin = TwilioStandin(tmp_path, [SENDER])
    dispatcher = None
    try:
        await wait_http(f"{standin.url}/healthz")
        run = await seed_run(db_pool, standin, [SENDER], 5, rng=random.Random(31))
        erased, kept = [run.recipients[0], run.recipients[-1]], run.recipients[1:-1]
        async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)  # published before the erasure, as in a live run
        async with db_pool.acquire() as conn, conn.transaction():
            for member in erased:
                done = await erasure.erase_member(conn, TEST_SECRETS, run.org_id, "+1", erased_by="admin@example.org",
                                                  phone=member.to)
                assert done.counts["dropped_unsent"] == 1

        env = dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin)
        dispatcher = start_dispatcher("dispatcher-0", env, tmp_path)

        async def completed() -> asyncpg.Record | None:
            row = await db_pool.fetchrow("SELECT state, sent, dropped FROM campaign_runs WHERE id = $1", run.run_id)
            return row if row["state"] == "completed" else None
        done_run = await eventually(completed, timeout=90, interval=0.5)

        assert (done_run["sent"], done_run["dropped"]) == (len(kept), len(erased))
        texted = await standin.messages_to()
        assert sorted(texted) == sorted(r.to for r in kept)
        assert await read_topic(kafka.admin, RECIPIENTS.dlq_name(topic_prefix), expect=1, timeout=3) == []
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        standin.process.stop()
