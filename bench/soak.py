"""Soak: a 20,000-segment campaign on 10 senders at the default 3 segments/s, through two real dispatchers.

    python -m bench.soak [--senders 10] [--segments 20000] [--dispatchers 2] [--sample-every 5]
    python -m bench.soak --quick   # 10 senders x 300 segments (3,000 in all): about two minutes

Needs PostgreSQL and Kafka (``python -m deploy.stack infra``); starts its own Twilio stand-in (its queues
draining at 3 segments/s, as Twilio's do) and dispatcher processes, in a scratch database under a unique
topic prefix, and removes them at the end. The campaign is the dispatcher benchmark's mix (mostly
1-segment texts, some 2 and 3; ``bench.dispatch``), each sender given ``segments / senders`` segments and
left at the default limit of 3 segments/s, every recipient published at once as the audience service does.

Printed: the run's wall time (recipients published -> run completed) against the ideal, segments /
(senders x 3), about 667 s for the default; the target is that ideal at issue 15's floor of 2.94 segments/s
per sender. Then the rate each sender achieved and the most segments any sender had in a sliding second
(from the stand-in's arrival log), duplicates and missing texts, and the memory of every process sampled
every few seconds (min/median/max): RSS of each dispatcher and of the stand-in, Kafka's RSS, and
PostgreSQL's total as the sum of its processes' PSS (RSS would count its shared buffers once per process).
PostgreSQL and Kafka are shared with whatever else runs, so their figures include it. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.cpu import peak_rss_mb
from bench.dispatch import best_pace, mixed_recipients
from bench.report import result
from deploy.stack import RUN, kafka_access
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
from libs.common.topics import ALL_TOPICS

RATE = 3.0  # segments/s per sender: the senders table's default and the stand-in's queue drain
FLOOR = 2.94  # issue 15: the least a sender may achieve of its 3 segments/s
DISPATCHER_RSS_MB = 200  # issue 15's target for a dispatcher process
POSTGRES = "PostgreSQL (PSS, all processes)"


@dataclass
class Soak:
    """What one soak ran and what it saw; ``report`` prints it."""

    senders: list[str]
    dispatchers: int
    recipients: list[Recipient]
    ideal: float
    sample_every: float
    samples: dict[str, list[float]]
    wall: float = 0.0
    run: dict[str, Any] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    by_number: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)


async def run_soak(sender_count: int, segments: int, dispatchers: int, sample_every: float) -> Soak:
    """Send the campaign and sample memory until the run completes (or 1.5 x the ideal + 2 min); clean up."""
    log_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    print(f"bench.soak: logs in {log_dir}", flush=True)
    senders = [f"+1888555{5000 + i:04d}" for i in range(sender_count)]
    per_sender = segments // sender_count
    prefix, kafka = f"soak{uuid.uuid4().hex[:6]}.", kafka_access()
    db_name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as cleanup:
        standin = TwilioStandin(log_dir, senders, rate=RATE)
        cleanup.callback(standin.process.stop)
        await wait_http(f"{standin.url}/healthz")
        cleanup.push_async_callback(delete_topics_with_prefix, kafka, prefix)
        await ensure_topics(kafka, ALL_TOPICS, prefix=prefix)
        cleanup.push_async_callback(drop_database, db_name)
        bench_db = await create_database(db_name)
        pool = await asyncpg.create_pool(bench_db, min_size=1, max_size=2)
        cleanup.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        rng = random.Random(12)
        run = await seed_run(pool, standin, senders, 0, rng=rng)
        run.recipients = mixed_recipients(run, senders, per_sender, rng, single_segment=False)
        await store_snapshot(pool, run.recipients)
        await pool.execute("UPDATE campaign_runs SET targeted = $2 WHERE id = $1", run.run_id, len(run.recipients))

        env = dispatcher_env(bench_db, kafka, prefix, standin)
        procs = [start_dispatcher(f"dispatcher-{i}", env, log_dir) for i in range(dispatchers)]
        for proc in procs:
            cleanup.callback(proc.stop)
        watched: dict[str, Callable[[], list[int]]] = {p.name: _fixed(p.proc.pid) for p in procs}
        watched |= {"Twilio stand-in": _fixed(standin.process.proc.pid), POSTGRES: _postgres_pids,
                    "Kafka": _kafka_pids}
        soak = Soak(senders, dispatchers, run.recipients, ideal=per_sender * sender_count / (sender_count * RATE),
                    sample_every=sample_every, samples={name: [] for name in watched})
        for proc in procs:
            await wait_http(f"{proc.url}/readyz")
        await asyncio.sleep(8)  # the consumer group settles, as in bench.dispatch: a soak, not a rebalance
        sampler = asyncio.create_task(_sample(watched, soak.samples, sample_every))
        cleanup.callback(sampler.cancel)
        started = time.monotonic()
        async with running_publisher(kafka, prefix) as (publisher, _):
            await publish_recipients(publisher, run)  # all at once, as the audience service does
        deadline = started + soak.ideal * 1.5 + 120
        while True:
            state = await pool.fetchrow("SELECT state, sent, failed FROM campaign_runs WHERE id = $1", run.run_id)
            assert state is not None  # the run seeded above
            soak.run = dict(state)
            if soak.run["state"] == "completed" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        soak.wall = time.monotonic() - started
        soak.peaks = {p.name: peak_rss_mb(p.proc.pid) for p in procs}
        soak.by_number = await standin.messages_to()
        soak.summary = await standin.summary()
        (log_dir / "arrivals.json").write_text(json.dumps(await standin.arrivals()))  # to look into a figure
    return soak


def report(soak: Soak) -> None:
    """Print the figures for a person, then as RESULT lines for bench.run's table."""
    recipients, summary, n = soak.recipients, soak.summary, len(soak.senders)
    total = sum(r.segments for r in recipients)
    duplicates = sum(len(m) - 1 for m in soak.by_number.values() if len(m) > 1)
    missing = len({r.to for r in recipients} - set(soak.by_number))
    rates = [s["arrival_segments_per_second"] for s in summary.values() if s["arrival_segments_per_second"]]
    window_peak = max(s["peak_segments_arrived_per_window"] for s in summary.values())
    span = max(s["last_accepted_at"] for s in summary.values()) - min(s["first_accepted_at"] for s in summary.values())
    ceilings = [best_pace([r.segments for r in recipients if r.sender == s], int(RATE)) for s in soak.senders]
    label = f"{total:,} segments on {n} senders, {soak.dispatchers} dispatchers"
    run, wall, ideal = soak.run, soak.wall, soak.ideal
    print(f"bench.soak: {len(recipients):,} messages, {label}; run {run['state']}, sent {run['sent']:,}, "
          f"failed {run['failed']}")
    print(f"  wall time {wall:.1f} s (published -> completed); ideal {ideal:.1f} s = {total:,} / ({n} x {RATE:g}); "
          f"{ideal / wall:.1%} of ideal; first to last arrival at the stand-in {span:.1f} s")
    print(f"  achieved segments/s per sender: min {min(rates):.3f}   median {statistics.median(rates):.3f}   "
          f"max {max(rates):.3f}   (best possible for each sender's mix: min {min(ceilings):.3f})")
    over = sorted(sender for sender, s in summary.items() if s["peak_segments_arrived_per_window"] > RATE)
    print(f"  largest segment count in any sliding 1 s window, any sender: {window_peak}"
          + (f"   (over {RATE:g}: {', '.join(over)}; see arrivals.json in the logs)" if over else ""))
    print(f"  duplicates {duplicates}   missing {missing}")
    count = max(len(v) for v in soak.samples.values())
    print(f"  memory, MB (min / median / max of {count} samples every {soak.sample_every:g} s):")
    for name, values in soak.samples.items():
        figures = " / ".join(f"{v:7.1f}" for v in _spread(values)) if values else "not sampled (not local)"
        peak = f"   peak RSS {soak.peaks[name]:.1f}" if name in soak.peaks else ""
        print(f"    {name:<32} {figures}{peak}")

    state = "" if run["state"] == "completed" else f", run still {run['state']}"
    result(f"Soak: wall time, {label}", f"<= {ideal * RATE / FLOOR:.0f} s",
           f"{wall:.1f} s (ideal {ideal:.0f} s, {ideal / wall:.1%} of it{state})")
    result("Soak: achieved segments/s per sender, min", f">= {FLOOR} segments/s",
           f"{min(rates):.3f} segments/s (median {statistics.median(rates):.3f}, max {max(rates):.3f})")
    result("Soak: most segments in any sliding 1 s, any sender", f"<= {RATE:g} segments", f"{window_peak} segments")
    result("Soak: duplicate texts", "= 0", str(duplicates))
    result("Soak: missing texts", "= 0", str(missing))
    result("Soak: failed sends", "= 0", str(run["failed"]))
    for name, values in soak.samples.items():
        if values:
            low, middle, high = _spread(values)
            target = f"<= {DISPATCHER_RSS_MB} MB" if name in soak.peaks else "-"
            kind = "PostgreSQL total PSS" if name == POSTGRES else f"{name} RSS"
            result(f"Soak: {kind}, max (min / median)", target, f"{high:.0f} MB ({low:.0f} / {middle:.0f})")


async def _sample(watched: dict[str, Callable[[], list[int]]], samples: dict[str, list[float]], every: float) -> None:
    while True:
        for name, pids in watched.items():
            found = pids()
            if found:
                megabytes = [_memory_mb(pid, pss=name == POSTGRES) for pid in found]
                samples[name].append(sum(megabytes))
        await asyncio.sleep(every)


def _memory_mb(pid: int, *, pss: bool) -> float:
    """VmRSS of a process, or its Pss (shared pages divided among their users); 0 if it has gone."""
    path, key = (f"/proc/{pid}/smaps_rollup", "Pss:") if pss else (f"/proc/{pid}/status", "VmRSS:")
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _fixed(pid: int) -> Callable[[], list[int]]:
    return lambda: [pid] if Path(f"/proc/{pid}").exists() else []


def _recorded_pid(name: str, command: str) -> int | None:
    """The pid deploy.stack recorded for ``name`` if that process is still ``command`` (a local infra)."""
    try:
        pid = int((RUN / f"{name}.pid").read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if comm == command else None


def _kafka_pids() -> list[int]:
    pid = _recorded_pid("kafka", "java")
    return [pid] if pid else []


def _postgres_pids() -> list[int]:
    """The postmaster and its children: the server, its background workers and every backend."""
    postmaster = _recorded_pid("postgres", "postgres")
    if postmaster is None:
        return []
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def _spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--segments", type=int, default=20_000, help="the campaign's segments, over all senders")
    parser.add_argument("--dispatchers", type=int, default=2)
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--quick", action="store_true", help="10 senders x 300 segments, to check it works")
    args = parser.parse_args()
    if args.quick:
        args.senders, args.segments = 10, 3_000
    report(asyncio.run(run_soak(args.senders, args.segments, args.dispatchers, args.sample_every)))


if __name__ == "__main__":
    main()
