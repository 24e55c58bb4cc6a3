"""Dispatchers come and go mid-campaign as Kubernetes moves them: a rolling restart and a scale 1 -> 4 -> 1.

Real dispatcher processes on the real broker, 24 senders. Each stopped dispatcher gets SIGTERM and must
drain (finish its Twilio calls in flight, record them, commit, leave the group) and exit 0 within the pod's
grace period. Then: every member texted once, none missing, no sender above 3 segments in any sliding
second, no claim left for a successor to reconcile, and the longest pause of any sender printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from harness.dispatch import (
    SeededRun,
    TwilioStandin,
    dispatcher_env,
    longest_pauses,
    publish_recipients,
    seed_run,
    start_dispatcher,
)
from harness.kafka import running_publisher
from harness.processes import Process, wait_http
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.e2e.test_dispatcher import assert_exactly_once, run_state
from tests.kafka_cluster import KafkaCluster

SENDERS = [f"+1888555{1200 + n}" for n in range(24)]
PER_SENDER = 160  # about 260 segments each: 85 s at 3 a second
DRAIN_S = 30  # the chart's dispatcher drainSeconds
GRACE_S = DRAIN_S + 15  # its terminationGracePeriodSeconds
PAUSE_TARGET_S = 10.0
# Deadlines for a loaded 2-core machine, not speed targets.
READY_S = 180
RUN_DEADLINE_S = 600
pytestmark = pytest.mark.timeout(RUN_DEADLINE_S + 600)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, SENDERS)
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@dataclass
class Fleet:
    """Dispatcher processes, started and stopped as a Deployment's pods are."""

    log_dir: Path
    env: dict[str, str]
    running: list[Process] = field(default_factory=list)
    stopped: list[Process] = field(default_factory=list)

    async def add(self, count: int = 1, *, instance_ids: list[str] | None = None) -> list[Process]:
        """Start ``count`` dispatchers (or one per static member name) and wait until each is ready, as a new
        pod's readiness gate does."""
        names = instance_ids or [None] * count
        started = [start_dispatcher(f"dispatcher-{len(self.running) + len(self.stopped) + i}",
                                    dict(self.env, TEXTPULSE_KAFKA_GROUP_INSTANCE_ID=name) if name else self.env,
                                    self.log_dir) for i, name in enumerate(names)]
        self.running += started
        await asyncio.gather(*(wait_http(f"{p.url}/readyz", timeout=READY_S) for p in started))
        return started

    async def terminate(self, processes: list[Process]) -> None:
        """SIGTERM each, as the kubelet does, and wait for them to exit: each must exit 0 within its grace period."""
        for process in processes:
            process.terminate()
        codes = await asyncio.gather(*(asyncio.to_thread(_wait, p) for p in processes))
        for process, code in zip(processes, codes, strict=True):
            self.running.remove(process)
            self.stopped.append(process)
            log = process.log_path.read_text()
            assert code == 0, f"{process.name} exited {code}; log {process.log_path}"
            assert "consumer.drained" in log and "service.drained" in log, f"{process.name} did not drain"

    def logs(self) -> str:
        return "".join(p.log_path.read_text() for p in self.running + self.stopped)

    def stop_all(self) -> None:
        for process in self.running + self.stopped:
            process.stop()


def _wait(process: Process) -> int | None:
    try:
        return process.proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        return None  # Kubernetes would SIGKILL it now


@pytest.fixture
async def fleet(tmp_path: Path, standin: TwilioStandin, database_url: str, kafka: KafkaCluster,
                topic_prefix: str) -> AsyncIterator[Fleet]:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    env = dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin)
    running = Fleet(tmp_path, dict(env, TEXTPULSE_DRAIN_SECONDS=str(DRAIN_S)))
    yield running
    running.stop_all()


async def start_campaign(db_pool: asyncpg.Pool, standin: TwilioStandin, kafka: KafkaCluster, prefix: str,
                         seed: int) -> SeededRun:
    run = await seed_run(db_pool, standin, SENDERS, len(SENDERS) * PER_SENDER, rng=random.Random(seed))
    async with running_publisher(kafka.user("audience"), prefix) as (publisher, _):
        await publish_recipients(publisher, run)
    return run


async def sent(db_pool: asyncpg.Pool, run: SeededRun) -> int:
    count: int = (await run_state(db_pool, run))["sent"]
    return count


async def sent_at_least(db_pool: asyncpg.Pool, run: SeededRun, share: float) -> None:
    target = int(len(run.recipients) * share)
    await eventually(lambda: _sent_at_least(db_pool, run, target), timeout=RUN_DEADLINE_S, interval=0.5)


async def _sent_at_least(db_pool: asyncpg.Pool, run: SeededRun, count: int) -> bool:
    return await sent(db_pool, run) >= count


async def finish_and_check(db_pool: asyncpg.Pool, standin: TwilioStandin, fleet: Fleet, run: SeededRun,
                           label: str, *, first_change_at: float) -> None:
    async def completed() -> asyncpg.Record | None:
        row = await run_state(db_pool, run)
        return row if row["state"] == "completed" else None

    done = await eventually(completed, timeout=RUN_DEADLINE_S, interval=0.5)
    assert done["sent"] == len(run.recipients) and done["failed"] == 0
    await assert_exactly_once(db_pool, standin, run)  # no duplicate, none missing, no sender over 3 a second
    logs = fleet.logs()
    # A drained dispatcher leaves no claim without its outcome: nobody had to ask Twilio what was sent.
    assert "send.reconciled" not in logs
    assert "service.drain_overran" not in logs
    arrivals = await standin.arrivals()
    pauses = longest_pauses(arrivals)
    sender, (pause, began) = max(pauses.items(), key=lambda item: item[1][0])
    median = sorted(p for p, _ in pauses.values())[len(pauses) // 2]
    # The same figure while the membership had not changed yet: what the loaded machine alone costs.
    steady = max(p for p, _ in longest_pauses(arrivals, until=first_change_at).values())
    at = time.strftime("%H:%M:%S", time.gmtime(began))
    report = (f"{label}: longest pause of any sender {pause:.2f} s ({sender}, from {at} UTC; target <= "
              f"{PAUSE_TARGET_S:g} s, printed, not asserted); median of the senders' longest pauses {median:.2f} s; "
              f"before the first change {steady:.2f} s; load average {os.getloadavg()[0]:.2f}")
    print(f"\n{report}")  # noqa: T201 - the figure the issue asks to see


async def test_a_rolling_restart_of_three_dispatchers_sends_every_member_once(
    fleet: Fleet, standin: TwilioStandin, db_pool: asyncpg.Pool, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await fleet.add(3)
    run = await start_campaign(db_pool, standin, kafka, topic_prefix, seed=23)
    await sent_at_least(db_pool, run, 0.15)
    first_change_at = time.time()
    for old in list(fleet.running):
        await fleet.add(1)  # maxSurge 1, maxUnavailable 0: the new pod is ready before the old one stops
        await fleet.terminate([old])
    assert await sent(db_pool, run) < len(run.recipients), "the restart ended after the campaign: it tested nothing"
    await finish_and_check(db_pool, standin, fleet, run, "rolling restart", first_change_at=first_change_at)


async def test_scaling_from_one_to_four_and_back_to_one_sends_every_member_once(
    fleet: Fleet, standin: TwilioStandin, db_pool: asyncpg.Pool, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await fleet.add(1)
    run = await start_campaign(db_pool, standin, kafka, topic_prefix, seed=41)
    await sent_at_least(db_pool, run, 0.15)
    first_change_at = time.time()
    added = await fleet.add(3)
    await sent_at_least(db_pool, run, 0.45)
    await fleet.terminate(added)  # a scale-down stops the three at once
    assert await sent(db_pool, run) < len(run.recipients), "the scale-down came after the campaign: it tested nothing"
    await finish_and_check(db_pool, standin, fleet, run, "scale 1 -> 4 -> 1", first_change_at=first_change_at)


async def test_with_static_membership_a_restarted_dispatcher_takes_its_partitions_back_without_a_rebalance(
    fleet: Fleet, standin: TwilioStandin, db_pool: asyncpg.Pool, kafka: KafkaCluster, topic_prefix: str
) -> None:
    # A StatefulSet's restart: the pod stops, then comes back under its name, within the session timeout.
    fleet.env["TEXTPULSE_KAFKA_SESSION_TIMEOUT_MS"] = "60000"
    names = ["dispatcher-a", "dispatcher-b", "dispatcher-c"]
    await fleet.add(instance_ids=names)
    run = await start_campaign(db_pool, standin, kafka, topic_prefix, seed=345)
    await sent_at_least(db_pool, run, 0.15)
    survivor = fleet.running[0]
    first_change_at = time.time()
    joins_before = survivor.log_path.read_text().count("partitions.assigned")
    for name in names[1:]:
        await fleet.terminate([fleet.running[1]])
        (back,) = await fleet.add(instance_ids=[name])
        await eventually(lambda b=back: "partitions.assigned count=4" in b.log_path.read_text(), timeout=READY_S)
    assert await sent(db_pool, run) < len(run.recipients), "the restarts ended after the campaign: they tested nothing"
    assert survivor.log_path.read_text().count("partitions.assigned") == joins_before, "the group rebalanced"
    await finish_and_check(db_pool, standin, fleet, run, "static membership, two restarts",
                           first_change_at=first_change_at)
