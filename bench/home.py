"""Load Home and the campaign list N times each, signed in, and print p50/p95 latency of the pages and
of their API calls.

    python -m bench.home [--requests 200] [--days 365] [--campaigns 50] [--ledger 1000000]

Makes a fresh database with every migration and seeds one organisation: a subscription, a linked
account, ``--days`` of usage rollups (usage_daily and its error codes), ``--campaigns`` campaigns in
every state with a run each (two of them sending), and ``--ledger`` send_ledger rows spread over those
runs (the sending runs' newest rows updated in the last minute, as the progress rate reads them).
Other organisations' data is not seeded.

The app is ``services.api.main.build`` (real pool, named queries checked, Kafka topics under a unique
prefix) called in process through httpx's ASGI transport, one request at a time after a warm-up:
latency is the app plus PostgreSQL, without a network hop. Removes the database and topics it made.
The campaign list is measured as staff open it, with no parameters: the first page, newest first
(``GET /api/v1/campaigns``: 50 campaigns of every state; ``GET /campaigns``: 25 of every state but
archived). Targets (issue 10): p95 <= 50 ms for Home and for the campaign list. Printed as
``RESULT`` lines (bench/report.py), never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
import httpx

from bench.report import result
from deploy.stack import database_url, kafka_access
from harness import factories
from harness.databases import create_database, drop_database
from harness.kafka import delete_topics_with_prefix
from libs.common.db import Connection, apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.settings import load_settings
from libs.common.topics import CAMPAIGN_DUE, CONSENT
from services.api import auth, auth_db
from services.api.main import build

STATES = ["draft", "scheduled", "sending", "paused", "completed", "cancelled", "archived"]
HOME_P95_MS, LIST_P95_MS = 50, 50


async def seed(conn: Connection, days: int, campaigns: int, ledger: int) -> tuple[uuid.UUID, uuid.UUID]:
    org_id = await factories.make_org(conn, slug="bench", name="Bench Association", time_zone="America/New_York")
    user_id, _ = await factories.make_user(conn, org_id, role="admin", email="admin@bench.example", name="Bench Admin",
                                           password="bench password 1234")
    await factories.make_sender(conn, org_id, "+18885550100", is_default=True)
    await conn.execute("INSERT INTO subscriptions (org_id, plan, monthly_segment_allowance) "
                       "VALUES ($1, 'Association Standard', 250000)", org_id)
    await factories.make_sms_account(conn, org_id, max_segments=30000)
    await conn.execute(
        """INSERT INTO usage_daily (org_id, day, messages, segments, delivered, failed, segment_cost, failed_fees)
           SELECT $1, current_date - d, 2000 + d * 37 % 900, 3100 + d * 53 % 1500, 1950 + d * 37 % 880,
                  10 + d % 17, (3100 + d * 53 % 1500) * 0.0083, (10 + d % 17) * 0.001
           FROM generate_series(0, $2 - 1) AS d""", org_id, days)
    await conn.execute(
        """INSERT INTO usage_daily_errors (org_id, day, error_code, messages)
           SELECT $1, current_date - d, code, 1 + d % 5
           FROM generate_series(0, $2 - 1) AS d, unnest(ARRAY[30003, 30005, 30007, 21610]) AS code""",
        org_id, days)
    await conn.execute(
        """INSERT INTO campaigns (org_id, name, body, state, created_by, state_changed_at)
           SELECT $1, 'Campaign ' || i, 'Hi {{first_name}}, renewal ' || i,
                  ($3::text[])[1 + i % array_length($3::text[], 1)],
                  'admin@bench.example', now() - make_interval(hours => i)
           FROM generate_series(1, $2) AS i""", org_id, campaigns, STATES)
    await conn.execute(
        """INSERT INTO campaigns (org_id, name, body, state) VALUES ($1, 'Sending A', 'x', 'sending'),
           ($1, 'Sending B', 'x', 'sending')""", org_id)
    await conn.execute(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent)
           SELECT org_id, id, now() - interval '1 hour',
                  CASE state WHEN 'sending' THEN 'sending' WHEN 'paused' THEN 'paused' ELSE 'completed' END,
                  now() - interval '1 hour', 4000, 2000
           FROM campaigns WHERE org_id = $1 AND state <> 'draft'""", org_id)
    runs = [r["id"] for r in await conn.fetch("SELECT id FROM campaign_runs WHERE org_id = $1 ORDER BY id", org_id)]
    await conn.execute(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, sent_at,
                                    updated_at, claimed_at)
           SELECT ($3::uuid[])[1 + i % array_length($3::uuid[], 1)], gen_random_uuid(), $1, '+18885550100',
                  '+1617' || lpad((i % 10000000)::text, 7, '0'), 1 + i % 3,
                  CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END,
                  now() - make_interval(secs => i % 86400), now() - make_interval(secs => i % 86400),
                  now() - make_interval(secs => i % 86400)
           FROM generate_series(1, $2) AS i""", org_id, ledger, runs)
    await conn.execute("ANALYZE")
    return org_id, user_id


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int) -> list[float]:
    for _ in range(5):  # warm-up: prepared statements, template compilation
        (await client.get(path, headers=headers)).raise_for_status()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


async def run_bench(n: int, days: int, campaigns: int, ledger: int) -> None:
    kafka, prefix = kafka_access(), f"bench{uuid.uuid4().hex[:6]}."
    admin_url = database_url()
    db_name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(db_name, server=admin_url)
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            seeded = time.perf_counter()
            org_id, user_id = await seed(conn, days, campaigns, ledger)
            seeded = time.perf_counter() - seeded
            session = await auth_db.start_session(conn, user_id, org_id)
        finally:
            await conn.close()
        await ensure_topics(kafka, [CAMPAIGN_DUE, CONSENT], prefix=prefix)
        settings = load_settings(database_url=url, **kafka.settings_overrides(), topic_prefix=prefix,
                                 env="test", public_base_url="http://bench.local", db_pool_min_size=2,
                                 db_pool_max_size=4)
        cookie = {"Cookie": f"{auth.cookie_name(False)}={session.token}"}
        page, api = {**cookie, "Accept": "text/html"}, {**cookie, "Accept": "application/json"}
        calls = [("Home page", "GET /", "/", page, HOME_P95_MS),
                 ("Home API", "GET /api/v1/dashboard/home", "/api/v1/dashboard/home", api, HOME_P95_MS),
                 ("Campaign list API", "GET /api/v1/campaigns", "/api/v1/campaigns", api, LIST_P95_MS),
                 ("Campaign list page", "GET /campaigns", "/campaigns", page, LIST_P95_MS)]
        async with build(settings) as service, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app), base_url="http://bench.local") as client:
            samples = [await measure(client, path, headers, n) for _, _, path, headers, _ in calls]
    finally:
        await drop_database(db_name, server=admin_url)
        await delete_topics_with_prefix(kafka, prefix)

    load = f"{ledger:,} ledger rows, {days} days usage, {campaigns + 2} campaigns"
    print(f"home bench: {n} requests each, one at a time, in-process ASGI client; seeded in {seeded:.1f} s "
          f"({load})")
    for (_, label, _, _, target), taken in zip(calls, samples, strict=True):
        print(f"  {label:<28} p50 {statistics.median(taken):7.1f} ms   p95 {percentile(taken, 95):7.1f} ms   "
              f"max {max(taken):7.1f} ms   (target p95 <= {target} ms)")
    for (figure, _, _, _, target), taken in zip(calls, samples, strict=True):
        result(f"{figure} p50 ({load})", "-", f"{statistics.median(taken):.1f} ms")
        result(f"{figure} p95 ({load})", f"<= {target} ms", f"{percentile(taken, 95):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    # The defaults are the load the targets are set for: a year of usage rollups, a million ledger rows.
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--ledger", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(run_bench(args.requests, args.days, args.campaigns, args.ledger))


if __name__ == "__main__":
    main()
