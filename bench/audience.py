"""Resolve a 100,000-member IQA audience end to end and print the wall time of each stage.

    python -m bench.audience [--members 125000|full|<count>] [--page-size 500] [--batch 2000]

Starts its own iMIS stand-in process, a fresh database with every migration, and topics under a unique
prefix. The stand-in's ``$/Textpulse/SMS Audience`` IQA keeps about 80 % of a data set (active members
with a mobile, not opted out), so the default data set of 125,000 members gives the issue's 100,000-row
audience, 201 pages of 500; ``--members full`` (the 100,000-member set) gives 80,162 rows.

One campaign-due event goes to the audience service's handler in this process, which times its stages:
paging (iMIS over HTTP, decoding, column mapping), preflight (suppression lookup, normalise, render,
count, dedupe, limits), DB write (COPY of the snapshot, member-phone index, run figures) and publish
(recipient events acknowledged by Kafka, checkpoint moved). Peak RSS is this process's.

Needs PostgreSQL and Kafka (``python -m deploy.stack infra``); removes the database, topics and stand-in
it created. Target (issue 7): under 20 s and under 300 MB peak RSS. Printed, never asserted; the
``RESULT`` lines carry them to ``python -m bench.run``'s table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.report import result
from deploy.stack import REPO, database_url, kafka_access
from harness import factories
from harness.credentials import TEST_SECRETS
from harness.databases import create_database, drop_database
from harness.kafka import delete_topics_with_prefix
from libs.common.db import apply_migrations, create_pool
from libs.common.events import CampaignDue
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS
from services.audience.db import AudienceStore
from services.audience.handlers import AudienceResolver, ImisSettings
from services.audience.publishing import RecipientPublisher, make_bulk_producer

BODY = "Hi {{first_name|there}}, your {{chapter|chapter}} renewal is open. Renew: https://mbr.example.org/r/{{member_id}}"


def start_standin(members: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.imis", "--port", "0", "--dataset", members, "--log-format", "text"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "imis-standin listening on http://127.0.0.1:PORT", once the data is built
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"the iMIS stand-in did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


async def seed(pool: asyncpg.Pool, imis_url: str, query_endpoint: str = "iqa") -> CampaignDue:
    async with pool.acquire() as conn, conn.transaction():
        org_id = await factories.make_org(conn, slug="bench", name="Bench")
        await factories.make_sms_account(conn, org_id, auth_token="x", webhook_base_url="https://bench.example")
        await factories.make_sender(conn, org_id, "+18885550100", is_default=True)
        await factories.make_imis_account(conn, org_id, base_url=imis_url, query_endpoint=query_endpoint)
        # A realistic suppression list: 2,000 numbers, some of them in the audience.
        await conn.executemany("INSERT INTO suppressions (org_id, phone, source) VALUES ($1, $2, 'keyword')",
                               [(org_id, f"+1415555{i:04d}") for i in range(0, 10_000, 5)])
        campaign_id = await factories.make_campaign(
            conn, org_id, name="Bench", body=BODY, audience={"kind": "iqa", "query": "$/Textpulse/SMS Audience"},
            segment_limit=1000000, state="sending")
        when = datetime.now(UTC)
        run_id = await factories.make_run(conn, org_id, campaign_id, occurrence_at=when)
    return CampaignDue(org_id=org_id, campaign_id=campaign_id, run_id=run_id, scheduled_for=when)


async def events_on(kafka: KafkaAccess, topic: str) -> int:
    consumer = AIOKafkaConsumer(**client_kwargs(kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(RECIPIENTS.partitions)]
        consumer.assign(partitions)
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def run_bench(members: str, page_size: int, batch: int) -> None:
    kafka, prefix = kafka_access(), f"bench{uuid.uuid4().hex[:6]}."
    admin_url = database_url()
    db_name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(db_name, server=admin_url)
    started = time.perf_counter()
    standin, imis_url = start_standin(members)
    standin_s = time.perf_counter() - started
    producer = make_bulk_producer(kafka)
    pool: asyncpg.Pool | None = None
    try:
        conn = await asyncpg.connect(url)
        await apply_migrations(conn)
        await conn.close()
        await ensure_topics(kafka, [CAMPAIGN_DUE, RECIPIENTS], prefix=prefix)
        pool = await create_pool(url, min_size=2, max_size=4)
        event = await seed(pool, imis_url)
        await producer.start()
        store = AudienceStore(pool, TEST_SECRETS)
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
            resolver = AudienceResolver(store, RecipientPublisher(producer, prefix=prefix),
                                        ImisSettings(http, imis_url, page_size=page_size), publish_batch=batch)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            wall = time.perf_counter()
            await resolver.handle(event)
            wall = time.perf_counter() - wall
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stages = resolver.last
        run = await pool.fetchrow("SELECT state, targeted, excluded, exclusions, planned_segments, estimated_cost "
                                  "FROM campaign_runs WHERE id = $1", event.run_id)
        assert run is not None  # the run the event is for, seeded above
        published = await events_on(kafka, RECIPIENTS.full_name(prefix))
        rows = await pool.fetchval("SELECT count(*) FROM run_recipients WHERE run_id = $1", event.run_id)
    finally:
        await producer.stop()
        if pool is not None:
            await pool.close()
        standin.terminate()
        standin.wait(timeout=20)
        await drop_database(db_name, server=admin_url)
        await delete_topics_with_prefix(kafka, prefix)

    print(f"audience bench: {stages.members:,} members from iMIS ({stages.pages} pages of {page_size}), "
          f"stand-in start-up {standin_s:.1f} s (not counted)")
    names = {"fetch": "paging", "preflight": "preflight", "store": "DB write", "publish": "publish"}
    for key, label in names.items():
        seconds = stages.seconds.get(key, 0.0)
        rate = stages.members / seconds if seconds else 0.0
        print(f"  {label:<10} {seconds:7.2f} s  {rate:>10,.0f} members/s")
    print(f"  {'total':<10} {wall:7.2f} s  {stages.members / wall:>10,.0f} members/s   (target < 20 s)")
    print(f"  peak RSS {rss:.0f} MB (before the run {rss_before:.0f} MB; target < 300 MB)")
    print(f"  run: state={run['state']} targeted={run['targeted']:,} excluded={run['excluded']:,} "
          f"segments={run['planned_segments']:,} est. cost=${run['estimated_cost']}")
    print(f"  exclusions: {json.loads(run['exclusions'])}")
    print(f"  snapshot rows {rows:,}; recipient events on Kafka {published:,} (published {stages.published:,})")
    result(f"Audience: a {stages.members:,}-row IQA resolved, snapshot written, recipients published", "< 20 s",
           f"{wall:.2f} s ({stages.members / wall:,.0f} members/s)")
    result("Audience: peak RSS of the resolving process", "< 300 MB", f"{rss:.0f} MB")
    result("Audience: recipient events on Kafka, one per member targeted", f"= {run['targeted']:,}", f"{published:,}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audience", description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="125000",
                        help="the stand-in's data set: a member count, or full (100,000); default 125000")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--batch", type=int, default=2000, help="recipients per publish batch")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(run_bench(args.members, args.page_size, args.batch))


if __name__ == "__main__":
    main()
