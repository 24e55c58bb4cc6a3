"""The dispatcher as real processes against the Twilio stand-in: rate, exactly once, crashes, faults.

Counts are taken where they matter: messages per member number and arrivals per sender, at the stand-in.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs.common.kafka import ensure_topics
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.e2e.dispatch_harness import (
    Process,
    SeededRun,
    TwilioStandin,
    dispatcher_env,
    publish_recipients,
    seed_run,
    start_dispatcher,
    wait_http,
)
from tests.kafka_helpers import running_publisher

SENDERS = ["+18885550110", "+18885550111", "+18885550112", "+18885550113"]


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, SENDERS)
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


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


async def test_two_dispatchers_send_every_recipient_once_at_the_senders_rate(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS, 80, rng=random.Random(1))
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    dispatchers = [start_dispatcher(f"dispatcher-{i}", env, tmp_path) for i in range(2)]
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        done = await eventually(lambda: _completed(db_pool, run), timeout=90, interval=0.5)
    finally:
        for d in dispatchers:
            d.stop()
    assert done["sent"] == 80 and done["failed"] == 0 and done["state"] == "completed"
    assert done["segments"] == sum(r.segments for r in run.recipients)
    await assert_exactly_once(db_pool, standin, run)
    summary = await standin.summary()
    busiest = max(summary.values(), key=lambda s: s["segments"])
    assert busiest["arrival_segments_per_second"] >= 2.7  # the sender was kept busy, not idling


async def test_kill_9_of_dispatchers_mid_run_sends_every_recipient_exactly_once(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    rng = random.Random(9)
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS, 160, rng=rng)
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    dispatchers: list[Process] = [start_dispatcher(f"dispatcher-{i}", env, tmp_path) for i in range(3)]
    kills = 0
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        for round_ in range(4):
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            victim = rng.randrange(len(dispatchers))
            dispatchers[victim].kill()
            kills += 1
            dispatchers[victim] = start_dispatcher(f"dispatcher-{victim}-r{round_}", env, tmp_path)
        done = await eventually(lambda: _completed(db_pool, run), timeout=150, interval=0.5)
    finally:
        for d in dispatchers:
            d.stop()
    assert kills == 4
    assert done["sent"] == 160 and done["state"] == "completed"
    await assert_exactly_once(db_pool, standin, run)


async def test_twilio_timeouts_429s_and_500s_cause_no_duplicate_and_no_failure(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS, 40, rng=random.Random(3))
    await standin.fault({"kind": "timeout", "hang_seconds": 20, "share": 0.1})
    await standin.fault({"kind": "rate_limited", "share": 0.1})
    await standin.fault({"kind": "server_error", "processed": True, "share": 0.1})
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    env["TEXTPULSE_TWILIO_TIMEOUT_S"] = "2"
    dispatchers = [start_dispatcher(f"dispatcher-{i}", env, tmp_path) for i in range(2)]
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        done = await eventually(lambda: _completed(db_pool, run), timeout=120, interval=0.5)
    finally:
        await standin.clear_faults()
        for d in dispatchers:
            d.stop()
    assert done["sent"] == 40 and done["failed"] == 0
    await assert_exactly_once(db_pool, standin, run)
    logs = "".join(p.read_text() for p in tmp_path.glob("dispatcher-*.log"))
    assert "send.throttled" in logs  # the 429s were met and retried
    assert "send.uncertain" in logs and "send.reconciled" in logs  # timeouts and 500s were reconciled
    assert "adopted" in logs or await _adopted(db_pool, run)  # a message Twilio had created was adopted


async def _adopted(pool: asyncpg.Pool, run: SeededRun) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM send_ledger WHERE run_id = $1 AND twilio_status IS NULL", run.run_id) > 0


async def _completed(pool: asyncpg.Pool, run: SeededRun) -> asyncpg.Record | None:
    row = await run_state(pool, run)
    return row if row["state"] == "completed" else None


async def test_a_paused_run_stops_within_a_second_and_resuming_finishes_it(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS[:2], 40, rng=random.Random(5))
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    dispatcher = start_dispatcher("dispatcher-0", env, tmp_path)
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        await eventually(lambda: _sent_at_least(db_pool, run, 8), timeout=60, interval=0.2)
        async with db_pool.acquire() as conn:
            await conn.execute("UPDATE campaign_runs SET state = 'paused' WHERE id = $1", run.run_id)
        paused_at = time.time()
        await asyncio.sleep(3)
        late = [m for ms in (await standin.messages_to()).values() for m in ms if m["accepted_at"] > paused_at + 1.0]
        assert late == []
        held = await run_state(db_pool, run)
        assert held["sent"] < 40
        async with db_pool.acquire() as conn:
            await conn.execute("UPDATE campaign_runs SET state = 'sending' WHERE id = $1", run.run_id)
        done = await eventually(lambda: _completed(db_pool, run), timeout=90, interval=0.5)
    finally:
        dispatcher.stop()
    assert done["sent"] == 40
    await assert_exactly_once(db_pool, standin, run)


async def test_an_unverified_sender_with_us_recipients_is_refused_before_any_send(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS[:1], 6, rng=random.Random(6))
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE senders SET verification = 'pending' WHERE org_id = $1", run.org_id)
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    dispatcher = start_dispatcher("dispatcher-0", env, tmp_path)
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        await eventually(lambda: _ledger_states(db_pool, run, {"cancelled": 6}), timeout=60, interval=0.2)
    finally:
        dispatcher.stop()
    refused = await run_state(db_pool, run)
    assert refused["state"] == "refused" and "pending" in refused["state_reason"]
    assert await standin.messages_to() == {}


async def _sent_at_least(pool: asyncpg.Pool, run: SeededRun, count: int) -> bool:
    return (await run_state(pool, run))["sent"] >= count


async def _ledger_states(pool: asyncpg.Pool, run: SeededRun, expected: dict[str, int]) -> bool:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM send_ledger WHERE run_id = $1 GROUP BY 1", run.run_id)
    return {r["state"]: r["n"] for r in rows} == expected


async def test_a_member_suppressed_after_the_audience_was_resolved_is_not_texted(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS[:1], 12, rng=random.Random(12))
    stopped = [r.to for r in run.recipients[::4]]  # replied STOP while their text was queued
    async with db_pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, $3, 'keyword')",
            [(run.org_id, phone, "" if i % 2 else SENDERS[0]) for i, phone in enumerate(stopped)])
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    dispatcher = start_dispatcher("dispatcher-0", env, tmp_path)
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        done = await eventually(lambda: _completed(db_pool, run), timeout=60, interval=0.5)
    finally:
        dispatcher.stop()
    texted = await standin.messages_to()
    assert set(texted) == {r.to for r in run.recipients} - set(stopped)
    assert done["sent"] == 9 and done["dropped"] == 3
    assert await _ledger_states(db_pool, run, {"sent": 9, "suppressed": 3})


async def test_a_volume_cap_on_an_unverified_sender_holds_across_two_dispatchers(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, prefix=topic_prefix)
    run = await seed_run(db_pool, standin, SENDERS[:1], 16, rng=random.Random(16))
    cap = 12
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE senders SET verification = 'pending' WHERE org_id = $1", run.org_id)
        await conn.execute("""INSERT INTO sender_cap_policies (org_id, verification, per_day, when_reached)
                              VALUES ($1, 'pending', $2, 'fail')""", run.org_id, cap)
        await conn.execute("DELETE FROM sender_volume WHERE sender = $1", SENDERS[0])
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    dispatchers = [start_dispatcher(f"dispatcher-{i}", env, tmp_path) for i in range(2)]
    try:
        async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        done = await eventually(lambda: _completed(db_pool, run), timeout=90, interval=0.5)
    finally:
        for d in dispatchers:
            d.stop()
    sent_segments = sum(int(m[0]["num_segments"]) for m in (await standin.messages_to()).values())
    assert sent_segments <= cap and done["sent"] + done["failed"] == 16 and done["failed"] > 0
    async with db_pool.acquire() as conn:
        used = await conn.fetchval("SELECT segments FROM sender_volume WHERE sender = $1 AND period = 'day'",
                                   SENDERS[0])
        reasons = {r["reason"] for r in await conn.fetch(
            "SELECT reason FROM send_ledger WHERE run_id = $1 AND state = 'failed'", run.run_id)}
    assert used == sent_segments and reasons == {f"cap_reached: {SENDERS[0]}'s day cap"}
