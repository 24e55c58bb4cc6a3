"""Time a big run's recipient funnel and its CSV export (services/api/funnel.py) on PostgreSQL.

    python -m bench.funnel [--recipients 100000] [--requests 20]

Makes a fresh database with every migration and seeds one organisation with one tracked run of
``--recipients`` recipients: 5% left out by the audience service, the rest in the ledger (90% delivered,
4% undelivered or failed over three error codes, 1% ended in quiet hours), one link click per tenth
recipient (a third of them with a second click, one in twenty a preview bot), a reply per fiftieth and an
opt-out per two hundredth. Another organisation's run of the same size sits beside it. The funnel is
asked ``--requests`` times (p50 and max); the export is streamed once to the end (time, rows). Printed as
``RESULT`` lines (bench/report.py), never asserted. Removes the database it made.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg

from bench.report import result
from deploy.stack import database_url
from harness import factories
from harness.databases import create_database, drop_database
from libs.common.db import apply_migrations, create_pool
from services.api import funnel

FUNNEL_P50_MS = 500.0

SEED = """
WITH p AS (
    INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, encoding, segments,
                                status, reason)
    SELECT $1, g, gen_random_uuid(), $2, 'm' || g, '+1415' || lpad(g::text, 7, '0'),
           CASE WHEN g % 20 = 0 THEN NULL ELSE 'Hi, renew: https://go.example.org/abcdefghijkl' END, 'GSM-7',
           CASE WHEN g % 20 = 0 THEN 0 ELSE 1 END,
           CASE WHEN g % 20 = 0 THEN 'excluded' ELSE 'queued' END,
           CASE WHEN g % 20 = 0 THEN 'opted_out' END
    FROM generate_series(1, $3) AS g
    RETURNING position, recipient_id, e164, status
), l AS (
    INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, message_sid,
                             twilio_status, error_code, sent_at)
    SELECT $1, recipient_id, $2, '+18885550100', e164, 1,
           CASE WHEN position % 100 = 1 THEN 'outside_window' WHEN position % 25 = 3 THEN 'failed' ELSE 'sent' END,
           CASE WHEN position % 100 = 1 THEN NULL ELSE 'SM' || md5(recipient_id::text) END,
           CASE WHEN position % 100 = 1 THEN NULL WHEN position % 25 = 3 THEN 'undelivered' ELSE 'delivered' END,
           CASE WHEN position % 25 = 3 THEN (ARRAY[30003, 30005, 30007])[position % 3 + 1] END, now()
    FROM p WHERE status = 'queued'
    RETURNING recipient_id
)
SELECT count(*) FROM l;
"""
SEED_RESPONSES = """
INSERT INTO link_clicks (click_id, code, org_id, run_id, recipient_id, clicked_at, agent_class)
SELECT gen_random_uuid(), 'abcdefghijkl', $2, $1, p.recipient_id, now(),
       CASE WHEN p.position % 200 = 0 THEN 'preview_bot' ELSE 'mobile' END
FROM run_recipients p, generate_series(1, 2) AS n
WHERE p.run_id = $1 AND p.status = 'queued' AND p.position % 10 = 0 AND (n = 1 OR p.position % 30 = 0);
INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, run_id, recipient_id,
                              received_at)
SELECT $2, 'SM' || md5('reply' || p.recipient_id::text), p.e164, p.e164, '+18885550100', 'Thanks', 'other', $1,
       p.recipient_id, now()
FROM run_recipients p WHERE p.run_id = $1 AND p.status = 'queued' AND p.position % 50 = 7;
INSERT INTO usage_optouts (run_id, recipient_id, org_id, day)
SELECT $1, p.recipient_id, $2, current_date
FROM run_recipients p WHERE p.run_id = $1 AND p.status = 'queued' AND p.position % 200 = 9;
"""


async def seed_run(conn: asyncpg.Connection, recipients: int) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    org_id = await factories.make_org(conn, slug=factories.new_slug(), name="Bench")
    campaign_id = await factories.make_campaign(conn, org_id, state="completed", track_links=True)
    run_id = await factories.make_run(conn, org_id, campaign_id, state="completed", started_at=factories.NOW)
    await conn.fetchval(SEED, run_id, org_id, recipients)
    for statement in SEED_RESPONSES.strip().split(";\n"):
        await conn.execute(statement.rstrip(";"), run_id, org_id)
    return org_id, campaign_id, run_id


async def run_bench(recipients: int, requests: int) -> None:
    admin_url = database_url()
    db_name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(db_name, server=admin_url)
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            seeded = time.perf_counter()
            org_id, campaign_id, run_id = await seed_run(conn, recipients)
            await seed_run(conn, recipients)  # another organisation's run of the same size
            await conn.execute("ANALYZE")
            seeded = time.perf_counter() - seeded
        finally:
            await conn.close()
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            samples = []
            async with pool.acquire() as pooled:
                found = await funnel.run_funnel(pooled, org_id, campaign_id, run_id)
                for _ in range(requests):
                    started = time.perf_counter()
                    await funnel.run_funnel(pooled, org_id, campaign_id, run_id)
                    samples.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            lines = sum([chunk.count("\n") async for chunk in funnel.export_rows(pool, org_id, run_id)])
            exported = time.perf_counter() - started
        finally:
            await pool.close()
    finally:
        await drop_database(db_name, server=admin_url)

    assert found is not None
    print(f"funnel bench: {recipients:,} recipients a run, two runs, seeded in {seeded:.1f} s; funnel "
          f"{found.targeted:,} targeted, {found.sent:,} sent, {found.delivered:,} delivered, "
          f"{found.clicked.people:,} clicked, {found.replied:,} replied, {found.opted_out_after:,} opted out")
    result(f"Run funnel, {recipients:,} recipients", f"p50 <= {FUNNEL_P50_MS:.0f} ms",
           f"p50 {statistics.median(samples):.0f} ms, max {max(samples):.0f} ms over {requests}")
    result(f"Run CSV export, {recipients:,} recipients", "streamed, flat memory",
           f"{lines - 1:,} rows in {exported:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run_bench(args.recipients, args.requests))


if __name__ == "__main__":
    main()
