"""Tracked short links against a real ``python -m services.links`` (target: >= 2,000 redirects/s from one
process, p99 <= 20 ms, no click lost).

    .venv/bin/python -m bench.links [--rate 2000] [--seconds 10] [--recipients 5000] [--connections 64]

Needs the local PostgreSQL and Kafka (``python -m deploy.stack infra``). The bench makes its own database
(migrated, dropped at the end) and topics (deleted at the end), seeds one run whose ``--recipients`` members
each have a short link, and starts the links service as its own process.

Load is open-loop, as bench/webhooks.py's: request i is due at ``i / rate`` seconds and its latency is
counted from then. Each request follows a random member's link with a phone's User-Agent, one in five
with a link-preview bot's, over keep-alive connections. Every 302 is answered after Kafka acknowledged
its click; the service's consumer then writes it to ``link_clicks``.

Printed: redirects/s, p50/p95/p99/max latency, answers other than 302, the service's CPU per redirect
(load-independent: 0.5 CPU-ms is 2,000/s on one core), the share of a core the service and this client got,
and the load average, then clicks stored against redirects answered (none lost) and
the people/bot split.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import uvloop

from bench.cpu import cpu_seconds
from bench.report import result
from bench.webhook_load import HttpConnection
from bench.webhooks import percentile
from deploy.stack import kafka_access
from harness import factories
from harness.databases import create_database, drop_database
from harness.kafka import delete_topics_with_prefix
from harness.processes import free_port, stop_process, wait_ready
from libs.common.db import apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.links import new_code
from libs.common.topics import LINK_CLICKS

DEFAULT_DATABASE_URL = "postgresql://textpulse:textpulse@127.0.0.1:55432/textpulse"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
BOT = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"


async def seed(conn: asyncpg.Connection, recipients: int) -> list[str]:
    org = await factories.make_org(conn, slug="bench-links", name="Bench")
    campaign = await factories.make_campaign(conn, org, name="Bench", body="https://example.org/agm",
                                             track_links=True)
    run = await factories.make_run(conn, org, campaign, state="sending")
    codes = [new_code() for _ in range(recipients)]
    expires = datetime.now(UTC) + timedelta(days=1)
    await conn.copy_records_to_table(
        "short_links", columns=["code", "org_id", "run_id", "recipient_id", "url", "expires_at"],
        records=[(code, org, run, uuid.uuid4(), f"https://example.org/agm?m={n}", expires)
                 for n, code in enumerate(codes)])
    return codes


def build_requests(codes: list[str], total: int, rng: random.Random) -> list[bytes]:
    return [(f"GET /{rng.choice(codes)} HTTP/1.1\r\nHost: go.bench.test\r\n"
             f"User-Agent: {BOT if rng.random() < 0.2 else PHONE}\r\n\r\n").encode() for _ in range(total)]


async def load(port: int, requests: list[bytes], rate: float, connections: int) -> tuple[list[float], list[int], float]:
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(HttpConnection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    statuses: list[int] = []
    loop = asyncio.get_running_loop()

    async def one(request: bytes, due: float) -> None:
        conn = await idle.get()
        try:
            statuses.append(await conn.send(request))
        finally:
            idle.put_nowait(conn)
        latencies.append(loop.time() - due)

    start = loop.time() + 0.1
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    while not idle.empty():
        idle.get_nowait().writer.close()
    return latencies, statuses, elapsed


async def main(args: argparse.Namespace) -> None:
    admin_url = os.environ.get("TEXTPULSE_DATABASE_URL", DEFAULT_DATABASE_URL)
    kafka = kafka_access()
    name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    port = free_port()
    total = int(args.rate * args.seconds)
    db_url = await create_database(name, server=admin_url)
    proc = None
    try:
        conn = await asyncpg.connect(db_url)
        await apply_migrations(conn)
        codes = await seed(conn, args.recipients)
        requests = build_requests(codes, total, random.Random(7))
        await ensure_topics(kafka, [LINK_CLICKS], prefix=prefix)
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=db_url, TEXTPULSE_HTTP_PORT=str(port),
                   TEXTPULSE_TOPIC_PREFIX=prefix, TEXTPULSE_LOG_LEVEL="WARNING", **kafka.env())
        proc = subprocess.Popen([sys.executable, "-m", "services.links"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_ready("services.links", port, proc, timeout=60)
        print(f"following {total} short links ({args.recipients} members, 1 in 5 by a preview bot) at "
              f"{args.rate:.0f}/s over {args.connections} connections to services.links (pid {proc.pid})")
        load_before = os.getloadavg()
        cpu_before, client_before = cpu_seconds(proc.pid), time.process_time()
        latencies, statuses, elapsed = await load(port, requests, args.rate, args.connections)
        client_cpu = time.process_time() - client_before
        load_done = time.monotonic()
        cpu_load = cpu_seconds(proc.pid) - cpu_before
        load_after = os.getloadavg()
        latencies.sort()
        redirects = sum(1 for s in statuses if s == 302)
        p50, p95, p99 = (percentile(latencies, share) * 1000 for share in (0.50, 0.95, 0.99))
        per_redirect_ms = cpu_load / len(statuses) * 1000
        print(f"redirects/s     {len(statuses) / elapsed:8.1f}   ({len(statuses)} in {elapsed:.2f} s)")
        print(f"latency ms      p50 {p50:.1f}   p95 {p95:.1f}   p99 {p99:.1f}   max {latencies[-1] * 1000:.1f}")
        print(f"not 302         {len(statuses) - redirects}")
        print(f"service CPU     {cpu_load:.2f} s = {per_redirect_ms:.3f} CPU-ms per redirect (HTTP, lookup, Kafka "
              f"append, and the consumer storing clicks), {cpu_load / elapsed:.0%} of a core at this rate")
        print(f"one core        would answer {1000 / per_redirect_ms:,.0f} redirects/s at this CPU cost; the service "
              f"got {cpu_load / elapsed:.0%} of one and this client used {client_cpu / elapsed:.0%} "
              f"({client_cpu / len(statuses) * 1000:.3f} CPU-ms per request)")
        print(f"load average    {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min; {os.cpu_count()} CPUs)")
        while await conn.fetchval("SELECT count(*) FROM link_clicks") < redirects:
            if time.monotonic() - load_done > 120:
                break
            await asyncio.sleep(0.1)
        caught_up = time.monotonic() - load_done
        split = {r["is_bot"]: r["count"] for r in await conn.fetch(
            "SELECT is_bot, count(*) FROM link_clicks GROUP BY 1")}
        stored = sum(split.values())
        print(f"clicks stored   {stored} of {redirects} ({'none lost' if stored == redirects else 'LOST'}), "
              f"the last {caught_up:.2f} s after the last redirect; people {split.get(False, 0)}, "
              f"bots {split.get(True, 0)}")
        result(f"Links: redirects/s answered, {args.rate:g}/s offered, one process", ">= 2,000 redirects/s",
               f"{len(statuses) / elapsed:.1f} redirects/s")
        result("Links: p99 redirect latency, open loop", "<= 20 ms",
               f"{p99:.1f} ms (p50 {p50:.1f}, p95 {p95:.1f}, max {latencies[-1] * 1000:.1f})")
        result("Links: answers other than 302", "= 0", str(len(statuses) - redirects))
        result("Links: clicks lost (redirected but not stored)", "= 0", str(redirects - stored))
        result("Links: service CPU per redirect", "<= 0.5 ms (2,000/s on one core)",
               f"{per_redirect_ms:.3f} ms (load average {load_after[0]:.2f})")
        await conn.close()
    finally:
        if proc is not None:
            stop_process(proc)
        await drop_database(name, server=admin_url)
        await delete_topics_with_prefix(kafka, prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=64)
    uvloop.run(main(parser.parse_args()))
