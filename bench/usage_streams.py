"""Usage rollups: the usage service's consumer against faust-streaming agents, on the same load.

    python -m bench.usage_streams [--events 20000] [--kill-at 0.4] [--only usage usage-faust ...]

Needs PostgreSQL and Kafka (``python -m deploy.stack infra``). Generates one load: ``events / 2`` send-results
on 12 runs (1 to 3 segments each), and one final status for each message (delivered, or undelivered with
30003 for one in ten), pre-produced to fresh topics, send-results first, as the dispatcher and the opt-out
service publish them. Each implementation then runs as a real process, one at a time, in its own scratch
database seeded with the same runs and send ledger:

- ``service``: ``python -m services.usage`` (the project's consumer: commits after each batch);
- ``faust``: ``python -m bench.faust_usage`` (faust-streaming agents calling the same handlers, one per
  topic, so the topics are handled concurrently; faust acks each event and commits acked offsets every 2.8 s);
- ``faust, one agent``: one agent on the three topics, one event at a time, as the service's consumer;
- ``faust, exactly_once``: per-topic agents with ``processing_guarantee="exactly_once"`` (Kafka transactions).

Each runs twice: once through (events/s from its first event to its last, CPU seconds per 1,000 events
and peak RSS of the worker process from /proc), and once killed with SIGKILL when ``--kill-at`` of the
events were handled, then started again at once: the time from the restart to the first event handled
past the kill, how many events were handled before the kill but not committed (so delivered again), and
whether the final rollups equal what was produced (events lost or counted twice). The rollups of every
run are also compared, column by column, with the service's on the same load. Not run in CI. Each run is
latency-bound on PostgreSQL (a transaction of several statements per event), about a hundred events a second
per process on a busy 2-core machine: 20,000 events take about 30 minutes for all eight runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.cpu import cpu_seconds, peak_rss_mb
from bench.report import result
from bench.usage_load import COUNTERS, RUNS, TOPICS, Load, make_load, produce, seed
from deploy.stack import REPO, VAR, database_url, kafka_access
from harness.kafka import delete_topics_with_prefix
from harness.processes import free_port
from libs.common.db import apply_migrations
from libs.common.kafka_security import KafkaAccess, client_kwargs

# Every event handled adds exactly one here: a send-result one message, a status one delivered or
# undelivered, or one held status (which, once its send-result arrives, becomes a message and a status).
PROGRESS_SQL = """SELECT coalesce((SELECT sum(messages + delivered + undelivered) FROM usage_runs), 0)
                         + (SELECT count(*) FROM usage_pending_statuses)"""
ROLLUP_SQL = """SELECT run_id, messages, segments, delivered, undelivered, failed, dropped, opted_out_failures,
                       opt_outs, unpriced_segments, segment_cost, failed_fees, pumping_fees, reported_cost, cost
                FROM usage_runs ORDER BY run_id"""
IDLE_S = 60.0  # no progress for this long, with nothing left to read: the rest is lost


@dataclass(frozen=True)
class Implementation:
    name: str
    module: str
    group_suffix: str
    args: tuple[str, ...] = ()

    def group(self, prefix: str) -> str:
        return f"{prefix}{self.group_suffix}"


SERVICE = Implementation("service", "services.usage", "usage")
FAUST = Implementation("faust", "bench.faust_usage", "usage-faust")
FAUST_ONE = Implementation("faust, one agent", "bench.faust_usage", "usage-faust-one", ("--one-agent",))
FAUST_EOS = Implementation("faust, exactly_once", "bench.faust_usage", "usage-faust-eos", ("--exactly-once",))
IMPLEMENTATIONS = {i.group_suffix: i for i in (SERVICE, FAUST, FAUST_ONE, FAUST_EOS)}


@dataclass
class Outcome:
    implementation: str
    killed: bool
    events: int
    load: str  # the topic prefix the load was produced under
    first_event_s: float = 0.0  # process start -> first event handled
    busy_s: float = 0.0  # first event -> last event handled (the run through only)
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    resume_s: float = 0.0  # restart after the kill -> first event handled past it
    redelivered: int = 0  # handled before the kill, not yet committed
    counted: int = 0  # events in the final rollups
    lost: int = 0
    doubled: int = 0
    lag: int = 0  # records the group had not committed at the end
    rollups: list[tuple[Any, ...]] = field(default_factory=list)


class Worker:
    """One implementation's process: started, measured from /proc, killed or stopped."""

    def __init__(self, impl: Implementation, env: dict[str, str], log: IO[bytes]) -> None:
        self.impl, self.env, self.log = impl, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", self.impl.module, *self.impl.args], cwd=REPO,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    def alive(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"{self.impl.module} is not running (exit code {code}); see {self.log.name}")
        return self.proc

    def cpu_s(self) -> float:
        return cpu_seconds(self.alive().pid)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.alive().pid)

    def kill(self) -> None:
        proc = self.alive()
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@asynccontextmanager
async def scratch_database(admin_url: str, load: Load) -> AsyncIterator[str]:
    """A fresh database beside ``admin_url``'s, migrated and seeded with ``load``; dropped at the end."""
    name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            await seed(conn, load)
        finally:
            await conn.close()
        yield url
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def lag_and_committed(kafka: KafkaAccess, group: str, prefix: str) -> tuple[int, int]:
    """(records not committed by ``group``, records committed) over the usage topics."""
    partitions = [TopicPartition(s.full_name(prefix), p) for s in TOPICS for p in range(s.partitions)]
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    consumer = AIOKafkaConsumer(**client_kwargs(kafka))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        await consumer.start()
        ends = await consumer.end_offsets(partitions)
    finally:
        await admin.close()
        await consumer.stop()
    done = {tp: committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0 for tp in partitions}
    return sum(ends[tp] - done[tp] for tp in partitions), sum(done.values())


async def run_one(impl: Implementation, load: Load, prefix: str, *, admin_url: str, kafka: KafkaAccess,
                  kill_at: float | None = None) -> Outcome:
    """Run ``impl`` over the load pre-produced under ``prefix``, in a fresh database beside ``admin_url``'s;
    kill -9 it once, and start it again, when ``kill_at`` of the events were handled."""
    outcome = Outcome(impl.name, kill_at is not None, load.events, prefix)
    async with scratch_database(admin_url, load) as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        (VAR / "log").mkdir(parents=True, exist_ok=True)
        log = open(VAR / "log" / f"bench-usage-streams-{impl.group_suffix}.log", "ab")
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=url, TEXTPULSE_TOPIC_PREFIX=prefix, **kafka.env(),
                   TEXTPULSE_HTTP_PORT=str(free_port()), TEXTPULSE_LOG_FORMAT="text")
        worker = Worker(impl, env, log)

        async def progress() -> int:
            worker.alive()
            return int(await pool.fetchval(PROGRESS_SQL))

        async def wait_for(target: int, timeout: float) -> float:
            """Seconds until progress reaches ``target`` (``timeout`` without any progress raises)."""
            began = last_change = time.monotonic()
            seen = await progress()
            while seen < target:
                await asyncio.sleep(0.1)
                now_seen = await progress()
                if now_seen != seen:
                    seen, last_change = now_seen, time.monotonic()
                elif time.monotonic() - last_change > timeout:
                    raise TimeoutError(f"stuck at {seen} of {target} events")
            return time.monotonic() - began

        try:
            worker.start()
            outcome.first_event_s = await wait_for(1, 120)
            if kill_at is not None:
                await wait_for(int(load.events * kill_at), IDLE_S)
                worker.kill()
                at_kill = await pool.fetchval(PROGRESS_SQL)
                _, committed = await lag_and_committed(kafka, impl.group(prefix), prefix)
                outcome.redelivered = max(0, int(at_kill) - committed)
                worker.start()
                outcome.resume_s = await wait_for(int(at_kill) + 1, 120)
            busy_from = time.monotonic()
            try:
                await wait_for(load.events, IDLE_S)
            except TimeoutError:
                pass  # lost events: the totals below say how many
            outcome.busy_s = time.monotonic() - busy_from
            outcome.cpu_s, outcome.peak_rss_mb = worker.cpu_s(), worker.peak_rss_mb()
            outcome.lag = await settled_lag(kafka, impl.group(prefix), prefix)
            outcome.rollups = [tuple(r) for r in await pool.fetch(ROLLUP_SQL)]
            outcome.counted = int(await pool.fetchval(PROGRESS_SQL))
            outcome.lost, outcome.doubled = compare(load, outcome.rollups)
        finally:
            worker.stop()
            await pool.close()
            log.close()
    return outcome


async def settled_lag(kafka: KafkaAccess, group: str, prefix: str, wait_s: float = 30.0) -> int:
    """The group's lag once it has committed everything it handled (faust commits on a timer)."""
    deadline = time.monotonic() + wait_s
    while True:
        lag, _ = await lag_and_committed(kafka, group, prefix)
        if lag == 0 or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(0.5)


def compare(load: Load, rollups: list[tuple[Any, ...]]) -> tuple[int, int]:
    """(events lost, events counted twice) against what was produced, counter by counter."""
    got = {row[0]: dict(zip(COUNTERS, row[1:5], strict=True)) for row in rollups}
    lost = doubled = 0
    for run_id, expected in load.expected().items():
        for name in ("messages", "delivered", "undelivered"):  # one event each; segments follow messages
            diff = got.get(run_id, {}).get(name, 0) - expected[name]
            lost, doubled = lost + max(0, -diff), doubled + max(0, diff)
    return lost, doubled


def report(outcomes: list[Outcome]) -> None:
    result("Usage streams: load average (1 min) at the end", "-", f"{os.getloadavg()[0]:.2f}")
    for o in outcomes:
        reference = next(first for first in outcomes if first.load == o.load)
        label = f"{o.implementation}, {'kill -9 mid-stream' if o.killed else 'run through'}"
        if not o.killed:
            result(f"{label}: events/s", "-", f"{o.events / o.busy_s:,.0f} events/s ({o.events:,} events in "
                                               f"{o.busy_s:.1f} s; first event {o.first_event_s:.1f} s after start)")
            result(f"{label}: CPU per 1,000 events", "-", f"{1000 * o.cpu_s / o.events:.2f} s "
                                                           f"({o.cpu_s:.1f} s in all, worker process)")
            result(f"{label}: peak RSS", "-", f"{o.peak_rss_mb:.0f} MB")
        else:
            result(f"{label}: resume after restart", "-",
                   f"{o.resume_s:.1f} s ({o.redelivered:,} events handled before the kill were not committed "
                   "and came again)")
        result(f"{label}: events lost", "= 0", f"{o.lost} (final rollups count {o.counted:,} of {o.events:,})")
        result(f"{label}: events counted twice", "= 0", str(o.doubled))
        result(f"{label}: records left uncommitted", "= 0", str(o.lag))
        if reference is not o:
            result(f"{label}: rollups equal {reference.implementation}'s on the same load, every column", "-",
                   "yes" if o.rollups == reference.rollups else "NO")


async def main_async(events: int, kill_at: float, chosen: list[Implementation]) -> list[Outcome]:
    outcomes = []
    kafka = kafka_access()
    for killed in (False, True):
        load = make_load(events)
        prefix = f"bench{uuid.uuid4().hex[:8]}."
        await produce(kafka, prefix, load)
        try:
            for impl in chosen:
                print(f"-- {impl.name}{', kill -9 mid-stream' if killed else ''}: {load.events:,} events",
                      flush=True)
                outcomes.append(await run_one(impl, load, prefix, admin_url=database_url(), kafka=kafka,
                                              kill_at=kill_at if killed else None))
        finally:
            await delete_topics_with_prefix(kafka, prefix)
    return outcomes



def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.usage_streams", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="send-results plus statuses (even, >= 24)")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of the events handled before kill -9")
    parser.add_argument("--only", nargs="+", choices=list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS),
                        help="the implementations to run, by consumer group (default: all)")
    args = parser.parse_args()
    if args.events < 2 * RUNS or args.events % 2:
        parser.error(f"--events must be even and at least {2 * RUNS}")
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at must be between 0 and 1")
    report(asyncio.run(main_async(args.events, args.kill_at, [IMPLEMENTATIONS[name] for name in args.only])))


if __name__ == "__main__":
    main()
