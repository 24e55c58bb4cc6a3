"""Scale benchmarks (issue 23), measured at the Twilio stand-in's arrival log. Prints its figures.

    python -m bench.scale senders               # 600 senders at 3 segments/s; 1, 2 and 4 dispatchers
    python -m bench.scale senders --dispatchers 2 --senders 600 --seconds 20
    python -m bench.scale fast                  # one high-throughput toll-free sender at 150 segments/s

Needs PostgreSQL and Kafka (``python -m deploy.stack infra``); starts its own stand-in and dispatchers.
Every text is one segment, the most messages (so the most dispatcher work) per segment. Targets:
aggregate >= 98% of the ideal (senders x rate) with two dispatchers, and no sender above its rate in any
sliding second; the fast sender >= 98% of 150 segments/s. The figures include the machine's other work:
CPU-ms per message per process is printed beside them, with the load average, to judge a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.cpu import cpu_by_role, cpu_used, peak_rss_mb
from bench.dispatch import bench_roles
from bench.report import result
from deploy.stack import kafka_access
from harness.databases import create_database, drop_database
from harness.dispatch import (
    TwilioStandin,
    dispatcher_env,
    publish_recipients,
    seed_run,
    start_dispatcher,
    store_snapshot,
)
from harness.kafka import delete_topics_with_prefix, running_publisher
from harness.processes import wait_http
from libs.common.db import apply_migrations
from libs.common.events import Recipient
from libs.common.kafka import ensure_topics
from libs.common.segments import count_segments
from libs.common.topics import ALL_TOPICS
from standins.twilio.arrivals import max_in_window

TARGET_SHARE = 0.98


@dataclass(frozen=True)
class Scenario:
    label: str
    senders: int
    rate: float  # segments per second per sender
    seconds: float  # each sender's ideal sending time
    dispatchers: int


async def run_scenario(scenario: Scenario) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    senders = [f"+1888{5000000 + i:07d}" for i in range(scenario.senders)]
    per_sender = round(scenario.rate * scenario.seconds)
    # No status callbacks: they are Twilio's work, not the dispatcher's (bench.webhooks measures them).
    standin = TwilioStandin(log_dir, senders, rate=scenario.rate, status_callbacks=False)
    await wait_http(f"{standin.url}/healthz")
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    kafka = kafka_access()
    await ensure_topics(kafka, ALL_TOPICS, prefix=prefix)
    db_name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    bench_db = await create_database(db_name)
    pool = await asyncpg.create_pool(bench_db, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    run = await seed_run(pool, standin, senders, 0, rng=random.Random(23))
    body = "Hi {n}, the AGM is on Friday."
    recipients = [Recipient(org_id=run.org_id, campaign_id=run.campaign_id, run_id=run.run_id,
                            recipient_id=uuid.uuid4(), sender=sender, to=f"+1415{n * len(senders) + s:07d}",
                            body=body.format(n=n), segments=count_segments(body.format(n=n)).segments)
                  for n in range(per_sender) for s, sender in enumerate(senders)]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE campaign_runs SET targeted = $2 WHERE id = $1", run.run_id, len(recipients))
        await conn.execute("UPDATE senders SET segments_per_second = $2 WHERE org_id = $1", run.org_id, scenario.rate)
    run.recipients = recipients
    await store_snapshot(pool, recipients)
    env = dispatcher_env(bench_db, kafka, prefix, standin)
    procs = [start_dispatcher(f"dispatcher-{i}", env, log_dir) for i in range(scenario.dispatchers)]
    try:
        for proc in procs:
            await wait_http(f"{proc.url}/readyz")
        await asyncio.sleep(8 + 2 * scenario.dispatchers)  # the group settles: steady state, not a rebalance
        pids = [p.proc.pid for p in procs]
        standin_pid = standin.process.proc.pid
        cpu_before = cpu_by_role(bench_roles(pids, standin_pid), database=db_name)
        load_before = os.getloadavg()
        async with running_publisher(kafka, prefix) as (publisher, _):
            await publish_recipients(publisher, run)  # all queued at once: the bench measures the dispatchers
        started = time.monotonic()
        state: Any = None
        while time.monotonic() - started < 60 + 20 * scenario.seconds:
            async with pool.acquire() as conn:
                state = await conn.fetchrow("SELECT state, sent, failed FROM campaign_runs WHERE id = $1", run.run_id)
            if state is not None and state["state"] == "completed":
                break
            await asyncio.sleep(0.5)
        cpu_after = cpu_by_role(bench_roles(pids, standin_pid), database=db_name)
        load_after = os.getloadavg()
        rss = [peak_rss_mb(pid) for pid in pids]
    finally:
        for p in procs:
            p.stop()
    by_number = await standin.messages_to()
    arrivals = await standin.arrivals()
    standin.process.stop()
    async with pool.acquire() as conn:  # claimed_by is "<host>:<pid>"
        rows = await conn.fetch("SELECT claimed_by, count(*) AS n FROM send_ledger WHERE run_id = $1 "
                                "GROUP BY claimed_by", run.run_id)
    handled_by = {int(r["claimed_by"].rsplit(":", 1)[1]): r["n"] for r in rows}
    await pool.close()
    await drop_database(db_name)
    await delete_topics_with_prefix(kafka, prefix)
    report(scenario, recipients, by_number, arrivals, state, pids, handled_by,
           (cpu_before, cpu_after), (load_before, load_after), rss, log_dir)


def report(scenario: Scenario, recipients: list[Recipient], by_number: dict[str, list[dict[str, Any]]],
           arrivals: list[dict[str, Any]], state: Any, pids: list[int], handled_by: dict[int, int],
           cpu: tuple[dict[int, tuple[str, float]], dict[int, tuple[str, float]]],
           load: tuple[tuple[float, float, float], tuple[float, float, float]], rss: list[float],
           log_dir: Path) -> None:
    figures = measure(arrivals)
    ideal = scenario.senders * scenario.rate
    messages = len(recipients)
    duplicates = sum(len(m) - 1 for m in by_number.values() if len(m) > 1)
    missing = len({r.to for r in recipients} - set(by_number))
    label = scenario.label
    print(f"bench.scale {label}: {messages:,} messages ({messages:,} segments), {scenario.senders} sender(s) at "
          f"{scenario.rate:g} segments/s, {scenario.dispatchers} dispatcher process(es); run "
          f"{state['state'] if state else 'unknown'}, failed {state['failed'] if state else '?'}")
    print(f"  aggregate {figures.aggregate:,.1f} segments/s of ideal {ideal:,.0f} = {figures.aggregate / ideal:.1%}"
          f"   (over {figures.span:.1f} s, first to last arrival; target >= {TARGET_SHARE:.0%})")
    print(f"  per sender: min {figures.per_sender_min:.3f}   median {figures.per_sender_median:.3f} segments/s"
          f"   (min {figures.per_sender_min / scenario.rate:.1%} of {scenario.rate:g})")
    print(f"  most segments in any sliding second, any sender: {figures.max_window}   (limit {scenario.rate:g})")
    print(f"  duplicates {duplicates}   missing {missing}")
    before, after = cpu
    used = cpu_used(before, after)
    total = sum(used.values())
    per_role = ", ".join(f"{role} {seconds / messages * 1000:.3f}" for role, seconds in used.items())
    print(f"  CPU-ms per message: {per_role}; all {total / messages * 1000:.3f}")
    for pid in pids:
        handled = handled_by.get(pid, 0)
        seconds = after[pid][1] - before[pid][1] if pid in after else 0.0
        print(f"  dispatcher pid {pid}: {handled:,} messages, {seconds:.1f} CPU-s, "
              f"{seconds / handled * 1000 if handled else 0:.3f} CPU-ms per message")
    print(f"  CPU budget: at {ideal:,.0f} messages/s the dispatchers need {used['dispatcher'] / messages * ideal:.2f} "
          f"cores, everything measured {total / messages * ideal:.2f} cores")
    print(f"  load average before {load[0][0]:.2f}, after {load[1][0]:.2f} (1 min; {os.cpu_count()} cores)")
    print(f"  dispatcher peak RSS: {', '.join(f'{r:.0f} MB' for r in rss)}")
    print(f"  logs: {log_dir}")
    result(f"{label}: aggregate achieved of ideal {ideal:,.0f} segments/s", f">= {TARGET_SHARE * 100:.0f} %",
           f"{figures.aggregate / ideal * 100:.1f} % ({figures.aggregate:,.0f} segments/s)")
    result(f"{label}: per-sender achieved, min", "-", f"{figures.per_sender_min:.3f} segments/s")
    result(f"{label}: most segments in any sliding second", f"<= {scenario.rate:g} segments",
           f"{figures.max_window} segments")
    result(f"{label}: CPU per message, dispatchers", "-", f"{used['dispatcher'] / messages * 1000:.3f} ms")
    result(f"{label}: CPU per message, Twilio stand-in", "-", f"{used['Twilio stand-in'] / messages * 1000:.3f} ms")
    result(f"{label}: duplicates", "= 0", str(duplicates))
    result(f"{label}: missing", "= 0", str(missing))
    result(f"{label}: load average (1 min) at the end", "-", f"{load[1][0]:.2f}")


@dataclass(frozen=True)
class Figures:
    aggregate: float
    span: float
    per_sender_min: float
    per_sender_median: float
    max_window: int


def measure(arrivals: list[dict[str, Any]]) -> Figures:
    """The arrival log's figures: segments/s over all senders (first to last arrival, the last message
    excluded as the stand-in's summary does), each sender's own rate, and the most segments any sender had
    accepted in a sliding second."""
    by_sender: dict[str, list[tuple[float, int]]] = {}
    for row in arrivals:
        if row["sender"] is not None:
            by_sender.setdefault(row["sender"], []).append((row["accepted_at"], row["segments"]))
    rates, peaks = [], []
    for events in by_sender.values():
        events.sort()
        span = events[-1][0] - events[0][0]
        rates.append((sum(s for _, s in events) - events[-1][1]) / span if span else 0.0)
        peaks.append(max_in_window(events, 1.0))
    everything = sorted(e for events in by_sender.values() for e in events)
    span = everything[-1][0] - everything[0][0]
    aggregate = (sum(s for _, s in everything) - everything[-1][1]) / span if span else 0.0
    return Figures(aggregate, span, min(rates), statistics.median(rates), max(peaks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["senders", "fast"])
    parser.add_argument("--dispatchers", type=int, nargs="+", help="process counts to run, one after another")
    parser.add_argument("--senders", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=20.0, help="each sender's ideal sending time")
    args = parser.parse_args()
    if args.kind == "senders":
        scenarios = [Scenario(f"{args.senders} senders at 3 segments/s, {n} dispatcher(s)", args.senders, 3.0,
                              args.seconds, n) for n in (args.dispatchers or [1, 2, 4])]
    else:
        scenarios = [Scenario(f"one sender at 150 segments/s, {n} dispatcher(s)", 1, 150.0, args.seconds, n)
                     for n in (args.dispatchers or [1])]
    for scenario in scenarios:
        asyncio.run(run_scenario(scenario))


if __name__ == "__main__":
    main()
