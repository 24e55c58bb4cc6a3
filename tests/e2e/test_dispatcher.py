"""The dispatcher as real processes against the Twilio stand-in: rate, exactly once, crashes, faults.

Counts are taken where they matter: messages per member number and arrivals per sender, at the stand-in.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from harness.dispatch import SeededRun, TwilioStandin, dispatcher_env, publish_recipients, seed_run, start_dispatcher
from harness.kafka import running_publisher
from harness.processes import Process, wait_http
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDERS = ["+18885550110", "+18885550111", "+18885550112", "+18885550113"]
# Waits are deadlines for a loaded 2-core machine, not speed targets: a run with Twilio faults backs its
# lanes off for up to 30 s at a time, and has been seen to need more than 120 s under load.
RUN_DEADLINE_S = 300
pytestmark = pytest.mark.timeout(RUN_DEADLINE_S + 180)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, SENDERS)
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@dataclass
class Dispatching:
    """Dispatcher processes on a test's own topics, and the run they work on."""

    log_dir: Path
    standin: TwilioStandin
    pool: asyncpg.Pool
    env: dict[str, str]
    kafka: KafkaCluster
    prefix: str
    processes: list[Process] = field(default_factory=list)

    def start(self, count: int, **env: str) -> None:
        for _ in range(count):
            name = f"dispatcher-{len(self.processes)}"
            self.processes.append(start_dispatcher(name, dict(self.env, **env), self.log_dir))

    def replace(self, index: int) -> None:
        """kill -9 the dispatcher at ``index`` and start a new one in its place."""
        self.processes[index].kill()
        self.processes[index] = start_dispatcher(f"dispatcher-{len(self.processes)}-{index}", self.env,
                                                 self.log_dir)

    async def publish(self, run: SeededRun) -> None:
        async with running_publisher(self.kafka.user("audience"), self.prefix) as (publisher, _):
            await publish_recipients(publisher, run)

    async def completed(self, run: SeededRun, timeout: float = RUN_DEADLINE_S) -> asyncpg.Record:
        return await eventually(lambda: _completed(self.pool, run), timeout=timeout, interval=0.5)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
async def dispatching(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster,
    topic_prefix: str,
) -> AsyncIterator[Dispatching]:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    env = dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin)
    running = Dispatching(tmp_path, standin, db_pool, env, kafka, topic_prefix)
    yield running
    running.stop()


async def run_state(pool: asyncpg.Pool, run: SeededRun) -> asyncpg.Record:
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM campaign_runs WHERE id = $1", run.run_id)


async def assert_exactly_once(pool: asyncpg.Pool, standin: TwilioStandin, run: SeededRun) -> None:
    by_number = await standin.messages_to()
    expected = {r.to for r in run.recipients}
    duplicates = {n: len(m) for n, m in by_number.items() if len(m) > 1}
    assert duplicates == {}, f"members texted more than once: {duplicates}"
    assert set(by_number) == expected, f"missing: {sorted(expected - set(by_number))[:10]}"
    async with pool.acquire() as conn:
        ledger = await conn.fetch("SELECT state, message_sid, to_number FROM send_ledger WHERE run_id = $1", run.run_id)
    assert {r["state"] for r in ledger} == {"sent"}
    sids = {m[0]["sid"] for m in by_number.values()}
    assert {r["message_sid"] for r in ledger} == sids  # nothing marked sent that was not sent
    summary = await standin.summary()
    for sender in run.senders:
        if summary[sender]["peak_segments_arrived_per_window"] > 3:
            arrived = [(round(a["accepted_at"] % 100, 3), a["segments"]) for a in await standin.arrivals()
                       if a["sender"] == sender]
            raise AssertionError(f"{sender} exceeded 3 segments in a sliding second: {arrived}")


async def test_two_dispatchers_send_every_recipient_once_within_the_senders_rate(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool
) -> None:
    run = await seed_run(db_pool, standin, SENDERS, 80, rng=random.Random(1))
    dispatching.start(2)
    await dispatching.publish(run)
    done = await dispatching.completed(run)
    assert done["sent"] == 80 and done["failed"] == 0 and done["state"] == "completed"
    assert done["segments"] == sum(r.segments for r in run.recipients)
    assert await _campaign_state(db_pool, run) == "completed"
    await assert_exactly_once(db_pool, standin, run)  # never more than 3 segments in any sliding second


async def test_kill_9_of_dispatchers_mid_run_sends_every_recipient_exactly_once(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool
) -> None:
    rng = random.Random(9)
    run = await seed_run(db_pool, standin, SENDERS, 160, rng=rng)
    dispatching.start(3)
    await dispatching.publish(run)
    for _ in range(4):
        await asyncio.sleep(rng.uniform(2.0, 5.0))
        dispatching.replace(rng.randrange(3))
    done = await dispatching.completed(run)
    assert done["sent"] == 160 and done["state"] == "completed"
    await assert_exactly_once(db_pool, standin, run)


async def test_twilio_timeouts_429s_and_500s_cause_no_duplicate_and_no_failure(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    run = await seed_run(db_pool, standin, SENDERS, 40, rng=random.Random(3))
    await standin.fault({"kind": "timeout", "hang_seconds": 20, "share": 0.1})
    await standin.fault({"kind": "rate_limited", "share": 0.1})
    await standin.fault({"kind": "server_error", "processed": True, "share": 0.1})
    dispatching.start(2, TEXTPULSE_TWILIO_TIMEOUT_S="2")
    try:
        await dispatching.publish(run)
        done = await dispatching.completed(run)
    finally:
        await standin.clear_faults()
    assert done["sent"] == 40 and done["failed"] == 0
    await assert_exactly_once(db_pool, standin, run)
    logs = "".join(p.read_text() for p in tmp_path.glob("dispatcher-*.log"))
    assert "send.throttled" in logs  # the 429s were met and retried
    assert "send.uncertain" in logs and "send.reconciled" in logs  # timeouts and 500s were reconciled
    assert await _adopted(db_pool, run)  # a message Twilio had created was adopted, not sent again


async def test_a_paused_run_sends_nothing_once_the_pause_is_acknowledged_and_resuming_finishes_it(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    run = await seed_run(db_pool, standin, SENDERS[:2], 40, rng=random.Random(5))
    dispatching.start(1)
    await dispatching.publish(run)
    await eventually(lambda: _sent_at_least(db_pool, run, 8), timeout=120, interval=0.2)
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE campaign_runs SET state = 'paused' WHERE id = $1", run.run_id)
    # Each sender's lane logs lane.run_paused when it first holds the run: what it sent is done by then.
    await eventually(lambda: _lanes_holding(tmp_path, run) == set(run.senders), timeout=120, interval=0.2)
    acknowledged = await standin.messages_to()
    await asyncio.sleep(3)  # the held recipients are tried again (every second) meanwhile: none may go
    assert await standin.messages_to() == acknowledged
    assert sum(len(m) for m in acknowledged.values()) < 40
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE campaign_runs SET state = 'sending' WHERE id = $1", run.run_id)
    done = await dispatching.completed(run)
    assert done["sent"] == 40
    await assert_exactly_once(db_pool, standin, run)


async def test_an_unverified_sender_with_us_recipients_is_refused_before_any_send(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool
) -> None:
    run = await seed_run(db_pool, standin, SENDERS[:1], 6, rng=random.Random(6))
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE senders SET verification = 'pending' WHERE org_id = $1", run.org_id)
    dispatching.start(1)
    await dispatching.publish(run)
    await eventually(lambda: _ledger_states(db_pool, run, {"cancelled": 6}), timeout=120, interval=0.2)
    refused = await run_state(db_pool, run)
    assert refused["state"] == "refused" and "pending" in refused["state_reason"]
    assert await standin.messages_to() == {}
    assert await _campaign_state(db_pool, run) == "failed"  # "Not sent", not "Sending" for ever


async def test_a_member_suppressed_after_the_audience_was_resolved_is_not_texted(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool
) -> None:
    run = await seed_run(db_pool, standin, SENDERS[:1], 12, rng=random.Random(12))
    stopped = [r.to for r in run.recipients[::4]]  # replied STOP while their text was queued
    async with db_pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, $3, 'keyword')",
            [(run.org_id, phone, "" if i % 2 else SENDERS[0]) for i, phone in enumerate(stopped)])
    dispatching.start(1)
    await dispatching.publish(run)
    done = await dispatching.completed(run)
    texted = await standin.messages_to()
    assert set(texted) == {r.to for r in run.recipients} - set(stopped)
    assert done["sent"] == 9 and done["dropped"] == 3
    assert await _ledger_states(db_pool, run, {"sent": 9, "suppressed": 3})


async def test_a_volume_cap_on_an_unverified_sender_holds_across_two_dispatchers(
    dispatching: Dispatching, standin: TwilioStandin, db_pool: asyncpg.Pool
) -> None:
    run = await seed_run(db_pool, standin, SENDERS[:1], 16, rng=random.Random(16))
    cap = 12
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE senders SET verification = 'pending' WHERE org_id = $1", run.org_id)
        await conn.execute("""INSERT INTO sender_cap_policies (org_id, verification, per_day, when_reached)
                              VALUES ($1, 'pending', $2, 'fail')""", run.org_id, cap)
        await conn.execute("DELETE FROM sender_volume WHERE sender = $1", SENDERS[0])
    dispatching.start(2)
    await dispatching.publish(run)
    done = await dispatching.completed(run)
    sent_segments = sum(int(m[0]["num_segments"]) for m in (await standin.messages_to()).values())
    assert sent_segments <= cap and done["sent"] + done["failed"] == 16 and done["failed"] > 0
    async with db_pool.acquire() as conn:
        used = await conn.fetchval("SELECT segments FROM sender_volume WHERE sender = $1 AND period = 'day'",
                                   SENDERS[0])
        reasons = {r["reason"] for r in await conn.fetch(
            "SELECT reason FROM send_ledger WHERE run_id = $1 AND state = 'failed'", run.run_id)}
    assert used == sent_segments and reasons == {f"cap_reached: {SENDERS[0]}'s day cap"}


async def _adopted(pool: asyncpg.Pool, run: SeededRun) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM send_ledger WHERE run_id = $1 AND twilio_status IS NULL", run.run_id) > 0


async def _completed(pool: asyncpg.Pool, run: SeededRun) -> asyncpg.Record | None:
    row = await run_state(pool, run)
    return row if row["state"] == "completed" else None


async def _sent_at_least(pool: asyncpg.Pool, run: SeededRun, count: int) -> bool:
    return (await run_state(pool, run))["sent"] >= count


async def _ledger_states(pool: asyncpg.Pool, run: SeededRun, expected: dict[str, int]) -> bool:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM send_ledger WHERE run_id = $1 GROUP BY 1", run.run_id)
    return {r["state"]: r["n"] for r in rows} == expected


def _lanes_holding(log_dir: Path, run: SeededRun) -> set[str]:
    """The senders whose lanes have acknowledged that ``run`` is paused, from the dispatchers' text logs."""
    held = set()
    for log in log_dir.glob("dispatcher-*.log"):
        for line in log.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            if " lane.run_paused " in line and fields.get("run_id") == str(run.run_id):
                held.add(fields["sender"])
    return held


async def _campaign_state(pool: asyncpg.Pool, run: SeededRun) -> str:
    return await pool.fetchval("SELECT state FROM campaigns WHERE id = $1", run.campaign_id)
