"""A real ``python -m services.audience`` resolving 10,000, 100,000 and 1,000,000-member IQAs: time and peak RSS.

    python -m bench.audience_service [--sizes 10000,100000,1000000] [--endpoint query|iqa]

For each size: an iMIS stand-in process whose ``$/Textpulse/SMS Audience`` IQA returns about that many
rows (it keeps about 80 % of its data set), a fresh audience service process (so its peak RSS is that
run's), one campaign-due event, then the clock runs until every queued recipient is published (the
run's ``published_through`` checkpoint reaches its last queued row). Printed per size: members, the time
to the committed snapshot (read, settle, write) and to the last event, members per second, the service
process's peak RSS (``VmHWM`` in ``/proc/<pid>/status``, read before it stops), the CPU seconds per
million members of the service, the stand-in, PostgreSQL (the bench database's backends and the server's
shared workers) and Kafka (the whole broker), the load average, and the service's own wall and CPU seconds
per stage (from its log). What the shared PostgreSQL workers and Kafka broker burn for others (measured
over 5 s before each run) is taken off their figures, and printed left in too. On a shared machine the CPU
seconds say more than the wall time: the last line per size is the least wall time the same CPU needs on
a quiet two-core machine (the service is one thread, so never less than its own CPU seconds).

Needs PostgreSQL and Kafka (``python -m deploy.stack infra``); makes its own database and topics and
removes them. Target: 1,000,000 members into snapshot and events in <= 120 s with the service's
peak RSS <= 300 MB. Printed, never asserted; ``RESULT`` lines carry the 1,000,000 figures to
``python -m bench.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.audience import events_on, seed, start_standin
from bench.cpu import KAFKA, POSTGRES, background_rates, cpu_by_role, cpu_used, net_of_background, peak_rss_mb
from bench.report import result
from deploy.stack import REPO, database_url, kafka_access
from harness.databases import drop_database
from harness.kafka import delete_topics_with_prefix, running_publisher
from harness.processes import free_port, wait_ready
from libs.common.db import apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS

KEPT = 0.8013  # rows the audience IQA keeps per member of the stand-in's data set (measured on 1.25M)
TARGET_S, TARGET_MB = 120.0, 300.0
SERVICE, STANDIN = "service", "iMIS stand-in"
STAGES = {"fetch": "read IQA into the stage", "preflight": "settle", "store": "write snapshot",
          "publish": "publish"}


@dataclass(frozen=True)
class Point:
    members: int
    targeted: int
    snapshot_s: float
    total_s: float
    peak_mb: float
    events: int
    cpu_s: dict[str, float]  # CPU seconds by process (SERVICE, STANDIN, POSTGRES, KAFKA), others' work taken off
    raw_cpu_s: dict[str, float]  # the same with the shared processes' background left in
    stages: dict[str, dict[str, float]]
    load: tuple[float, float]  # 1-minute load average at the start and at the end

    def per_million(self, role: str) -> float:
        return self.cpu_s.get(role, 0.0) * 1_000_000 / self.members

    def quiet_bound_s(self) -> float:
        """The least wall time this CPU needs on two quiet cores, per million members."""
        return max(self.per_million(SERVICE), sum(self.per_million(r) for r in self.cpu_s) / 2)

    def quiet_estimate_s(self) -> float:
        """Wall time per million members on two quiet cores if nothing of PostgreSQL's overlapped the
        service's work: the service (one thread) reads and publishes, and the stage is settled and the
        snapshot written by PostgreSQL alone in between. An upper estimate: the COPY and the number
        lookups do overlap the service's reading."""
        return self.per_million(SERVICE) + self.per_million(POSTGRES)


def stages_of(log: Path, run_id: uuid.UUID) -> dict[str, dict[str, float]]:
    """The service's own wall and CPU seconds per stage of the run (its ``run.published`` log line)."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if '"run.published"' in line and str(run_id) in line:
            stages: dict[str, dict[str, float]] = json.loads(line)["seconds"]
            return stages
    return {}


async def measure(size: int, db_url: str, database: str, kafka: KafkaAccess, prefix: str, log: Path,
                  endpoint: str) -> Point:
    standin, imis_url = start_standin(str(round(size / KEPT)))
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    service: subprocess.Popen[bytes] | None = None
    try:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM organisations WHERE slug = 'bench'")
        event = await seed(pool, imis_url, endpoint)
        port = free_port()
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=db_url, TEXTPULSE_HTTP_PORT=str(port),
                   TEXTPULSE_TOPIC_PREFIX=prefix, **kafka.env(),
                   TEXTPULSE_IMIS_BASE_URL=imis_url, TEXTPULSE_RUN_MEMBER_CAP="2000000",
                   TEXTPULSE_LOG_FORMAT="json", TEXTPULSE_ENV="test")
        with log.open("ab") as out:
            service = subprocess.Popen([sys.executable, "-m", "services.audience"], cwd=REPO, env=env,
                                       stdout=out, stderr=out)
        await wait_ready("services.audience", port, service, timeout=60)
        before = await events_on(kafka, RECIPIENTS.full_name(prefix))
        roles = {service.pid: SERVICE, standin.pid: STANDIN}
        background = await background_rates(roles, database=database)
        cpu_before, load_before = cpu_by_role(roles, database=database), os.getloadavg()[0]
        started = time.perf_counter()
        async with running_publisher(kafka, prefix) as (publisher, _):
            await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))
        snapshot_s = None
        while True:
            if service.poll() is not None:
                raise RuntimeError(f"services.audience exited with {service.returncode}; see {log}")
            row = await pool.fetchrow(
                "SELECT r.state, r.published_through, r.targeted, "
                "(SELECT max(position) FROM run_recipients s WHERE s.run_id = r.id AND s.status = 'queued') AS last "
                "FROM campaign_runs r WHERE r.id = $1", event.run_id)
            assert row is not None  # the run seeded above
            if snapshot_s is None and row["state"] != "resolving" and row["state"] != "pending":
                snapshot_s = time.perf_counter() - started
            if row["state"] != "sending" and snapshot_s is not None:
                raise RuntimeError(f"the run ended {row['state']}; see {log}")
            if row["state"] == "sending" and row["last"] is not None and row["published_through"] >= row["last"]:
                break
            await asyncio.sleep(0.2)
        total_s = time.perf_counter() - started
        peak = peak_rss_mb(service.pid)
        raw_cpu = cpu_used(cpu_before, cpu_by_role(roles, database=database))
        cpu = net_of_background(raw_cpu, background, total_s)
        members = await pool.fetchval("SELECT count(*) FROM run_recipients WHERE run_id = $1", event.run_id)
        events = await events_on(kafka, RECIPIENTS.full_name(prefix)) - before
        return Point(members, row["targeted"], snapshot_s or total_s, total_s, peak, events, cpu, raw_cpu,
                     stages_of(log, event.run_id), (load_before, os.getloadavg()[0]))
    finally:
        if service is not None and service.poll() is None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                service.kill()
        await pool.close()
        standin.terminate()
        standin.wait(timeout=30)


async def run_bench(sizes: list[int], endpoint: str) -> None:
    kafka, admin_url = kafka_access(), database_url()
    name, prefix = f"textpulse_bench_{uuid.uuid4().hex[:8]}", f"bench{uuid.uuid4().hex[:6]}."
    db_url = admin_url.rsplit("/", 1)[0] + "/" + name
    log = Path(f"/tmp/bench-audience-service-{uuid.uuid4().hex[:6]}.log")
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    points: list[Point] = []
    try:
        conn = await asyncpg.connect(db_url)
        await apply_migrations(conn)
        await conn.close()
        await ensure_topics(kafka, [CAMPAIGN_DUE, RECIPIENTS], prefix=prefix)
        for size in sizes:
            points.append(await measure(size, db_url, name, kafka, prefix, log, endpoint))
            p = points[-1]
            print(f"  {p.members:>10,} members: snapshot {p.snapshot_s:7.1f} s, all published {p.total_s:7.1f} s "
                  f"({p.members / p.total_s:>7,.0f} members/s), {p.events:,} events for {p.targeted:,} "
                  f"recipients, service peak RSS {p.peak_mb:5.0f} MB; load average {p.load[0]:.1f} at the start, "
                  f"{p.load[1]:.1f} at the end", flush=True)
            print("    CPU seconds per million members: " + ", ".join(
                f"{role} {p.per_million(role):.1f}" for role in (SERVICE, STANDIN, POSTGRES, KAFKA))
                + f"; all {sum(p.per_million(r) for r in p.cpu_s):.1f} (before taking off the shared servers' "
                f"background, measured for 5 s before the run: PostgreSQL "
                f"{p.raw_cpu_s.get(POSTGRES, 0.0) * 1e6 / p.members:.1f}, Kafka "
                f"{p.raw_cpu_s.get(KAFKA, 0.0) * 1e6 / p.members:.1f})", flush=True)
            print("    service stages: " + ", ".join(
                f"{STAGES.get(stage, stage)} {t['wall']:.1f} s (CPU {t['cpu']:.1f} s)"
                for stage, t in p.stages.items()), flush=True)
            print(f"    on two quiet cores this CPU needs at least {p.quiet_bound_s():.1f} s per million members "
                  f"(the service's own CPU, or all CPU over two cores) and at most about "
                  f"{p.quiet_estimate_s():.1f} s (the service's and PostgreSQL's CPU one after the other)", flush=True)
    finally:
        await drop_database(name, server=admin_url)
        await delete_topics_with_prefix(kafka, prefix)
    print(f"  service log: {log}")
    largest = points[-1]
    result(f"Audience service: a {largest.members:,}-member IQA into snapshot and events", f"<= {TARGET_S:.0f} s",
           f"{largest.total_s:.1f} s ({largest.members / largest.total_s:,.0f} members/s)")
    result(f"Audience service: peak RSS resolving {largest.members:,} members", f"<= {TARGET_MB:.0f} MB",
           f"{largest.peak_mb:.0f} MB")
    for role in (SERVICE, STANDIN, POSTGRES, KAFKA):
        result(f"Audience service bench: CPU seconds per million members, {role}", "-",
               f"{largest.per_million(role):.1f} s")
    result("Audience service bench: least wall time per million members on two quiet cores (from CPU)",
           f"<= {TARGET_S:.0f} s", f"{largest.quiet_bound_s():.1f} s")
    result("Audience service bench: wall time per million members on two quiet cores, service then PostgreSQL",
           f"<= {TARGET_S:.0f} s", f"{largest.quiet_estimate_s():.1f} s")
    result("Audience service: recipient events, one per recipient", f"= {largest.targeted:,}", f"{largest.events:,}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audience_service", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="IQA sizes, comma-separated")
    parser.add_argument("--endpoint", choices=("query", "iqa"), default="query",
                        help="query: /api/Query (flat rows), iqa: the deprecated /api/IQA")
    args = parser.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise SystemExit(f"--sizes takes whole numbers separated by commas, not {args.sizes!r}") from None
    print(f"audience service bench: sizes {', '.join(f'{s:,}' for s in sizes)}, iMIS endpoint {args.endpoint}")
    asyncio.run(run_bench(sizes, args.endpoint))


if __name__ == "__main__":
    main()
