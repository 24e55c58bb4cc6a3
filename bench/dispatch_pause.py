"""How soon a paused run stops sending: the figure tests/e2e/test_dispatcher.py leaves to a benchmark.

    python -m bench.dispatch_pause [--rounds 5] [--recipients 240]

One dispatcher process sends one run over two senders to the Twilio stand-in; the run is paused ``--rounds``
times (each after a few more texts went) and resumed. Printed per pause: the seconds from the pause's
commit to every lane's acknowledgement (the dispatcher's ``lane.run_paused`` log line) and to the last
text Twilio accepted after the commit (one already under way may still go); then duplicates and missing
texts once the run completed, the dispatcher's CPU seconds per text, and the load average (wall-clock
figures depend on what else runs; CPU per text does not).

Needs PostgreSQL and Kafka (``python -m deploy.stack infra``); starts its own stand-in and dispatcher.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import asyncpg

from bench.cpu import cpu_seconds
from bench.report import result
from deploy.stack import kafka_access
from harness.databases import create_database, drop_database
from harness.dispatch import SeededRun, TwilioStandin, dispatcher_env, publish_recipients, seed_run, start_dispatcher
from harness.kafka import delete_topics_with_prefix, running_publisher
from harness.processes import wait_http
from libs.common.db import apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.topics import ALL_TOPICS

SENDERS = ["+18885554000", "+18885554001"]
HOLD_S = 3.0  # each pause lasts this long: held recipients are tried again every second meanwhile
DEADLINE_S = 600.0


async def sent(pool: asyncpg.Pool, run: SeededRun) -> int:
    return int(await pool.fetchval("SELECT sent FROM campaign_runs WHERE id = $1", run.run_id))


async def wait_until(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def acknowledgements(log: Path, run: SeededRun) -> list[float]:
    """When each ``lane.run_paused`` line for ``run`` was logged (epoch seconds), in order."""
    times = []
    for line in log.read_text().splitlines():
        if '"lane.run_paused"' in line:
            entry = json.loads(line)
            if entry["run_id"] == str(run.run_id):
                times.append(datetime.fromisoformat(entry["ts"]).timestamp())
    return times


async def run_bench(rounds: int, recipients: int) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-pause-"))
    standin = TwilioStandin(log_dir, SENDERS)
    await wait_http(f"{standin.url}/healthz")
    kafka = kafka_access()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(kafka, ALL_TOPICS, prefix=prefix)
    db_name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    bench_db = await create_database(db_name)
    pool = await asyncpg.create_pool(bench_db, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    run = await seed_run(pool, standin, SENDERS, recipients, rng=random.Random(21))
    env = dispatcher_env(bench_db, kafka, prefix, standin) | {"TEXTPULSE_LOG_FORMAT": "json"}  # times to the ms
    dispatcher = start_dispatcher("dispatcher-0", env, log_dir)
    to_ack: list[float] = []
    to_last: list[float] = []
    try:
        await wait_http(f"{dispatcher.url}/readyz")
        cpu_before = cpu_seconds(dispatcher.proc.pid)
        async with running_publisher(kafka, prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        for _ in range(rounds):
            target = await sent(pool, run) + 4
            await wait_until(partial(_at_least, pool, run, target), "texts before the pause")
            seen = len(acknowledgements(dispatcher.log_path, run))
            await pool.execute("UPDATE campaign_runs SET state = 'paused' WHERE id = $1", run.run_id)
            paused_at = time.time()
            await wait_until(partial(_acknowledged, dispatcher.log_path, run, seen), "the acknowledgements")
            await asyncio.sleep(HOLD_S)
            to_ack.append(max(acknowledgements(dispatcher.log_path, run)[seen:]) - paused_at)
            accepted = [m["accepted_at"] for ms in (await standin.messages_to()).values() for m in ms]
            to_last.append(max([a - paused_at for a in accepted if a > paused_at], default=0.0))
            await pool.execute("UPDATE campaign_runs SET state = 'sending' WHERE id = $1", run.run_id)
        await wait_until(partial(_completed, pool, run), "the run to complete")
        cpu = cpu_seconds(dispatcher.proc.pid) - cpu_before
    finally:
        dispatcher.stop()
    by_number = await standin.messages_to()
    standin.process.stop()
    await pool.close()
    await drop_database(db_name)
    await delete_topics_with_prefix(kafka, prefix)

    duplicates = sum(len(m) - 1 for m in by_number.values() if len(m) > 1)
    missing = len({r.to for r in run.recipients} - set(by_number))
    print(f"bench.dispatch_pause: {rounds} pauses of one run of {recipients} texts over {len(SENDERS)} senders, "
          f"one dispatcher; load average {os.getloadavg()[0]:.2f}")
    print("  pause commit -> every lane acknowledged (s): " + ", ".join(f"{s:.3f}" for s in to_ack))
    print("  pause commit -> last text accepted (s):      " + ", ".join(f"{s:.3f}" for s in to_last))
    print(f"  duplicates {duplicates}   missing {missing}   dispatcher CPU {cpu / recipients * 1000:.2f} ms per text")
    print(f"  logs: {log_dir}")
    result("Pause: commit to every lane's acknowledgement, median", "-", f"{statistics.median(to_ack):.3f} s")
    result("Pause: commit to every lane's acknowledgement, worst", "<= 1 s", f"{max(to_ack):.3f} s")
    result("Pause: commit to the last text accepted, worst", "<= 1 s", f"{max(to_last):.3f} s")
    result("Pause: duplicates", "= 0", str(duplicates))
    result("Pause: missing", "= 0", str(missing))
    result("Pause: dispatcher CPU per text", "-", f"{cpu / recipients * 1000:.2f} ms")


async def _at_least(pool: asyncpg.Pool, run: SeededRun, count: int) -> bool:
    return await sent(pool, run) >= count


async def _acknowledged(log: Path, run: SeededRun, seen: int) -> bool:
    return len(acknowledgements(log, run)) >= seen + len(SENDERS)


async def _completed(pool: asyncpg.Pool, run: SeededRun) -> bool:
    return bool(await pool.fetchval("SELECT state FROM campaign_runs WHERE id = $1", run.run_id) == "completed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--recipients", type=int, default=240)
    args = parser.parse_args()
    asyncio.run(run_bench(args.rounds, args.recipients))


if __name__ == "__main__":
    main()
