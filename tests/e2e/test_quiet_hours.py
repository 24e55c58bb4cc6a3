"""Quiet hours and frequency caps with a real dispatcher, the Twilio stand-in and a controlled clock.

The dispatcher's clock runs ahead of the system's by the seconds in a file this test writes
(``TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE``): the run starts at 8:30 pm Eastern, Wednesday 2026-12-02.
Members in four zones: Pacific, Mountain and Central are within the federal 9 pm and are sent, as is New
York; Florida (8 pm) is held until 8 am Eastern. The iMIS stand-in's Zoë has a San Francisco number and a
Miami address (the audience service stores its state in the snapshot): she is held too, until 8 am Central,
when the window is open in all of Florida. The dispatcher is killed while they are held; the clock is moved
to the next morning and the run completes with exactly one text each. A member who already had the
organisation's cap of marketing texts this week gets none.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from harness import factories
from harness.dispatch import (
    ControlledClock,
    SeededRun,
    TwilioStandin,
    dispatcher_env,
    publish_recipients,
    snapshot_texts,
    start_dispatcher,
)
from harness.kafka import running_publisher
from harness.processes import Process, wait_http
from libs.common.topics import ALL_TOPICS
from standins.members.fixtures import SMALL
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDER = "+18885550120"
EVENING = datetime(2026, 12, 3, 1, 30, tzinfo=UTC)  # 8:30 pm Eastern, 5:30 pm Pacific
FLORIDA_OPENS = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # 8 am Eastern
ALL_FLORIDA_OPENS = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)  # 8 am Central: the panhandle too
DEADLINE_S = 240  # a loaded 2-core machine, not a speed target
pytestmark = pytest.mark.timeout(DEADLINE_S * 3 + 120)

SENT_IN_THE_EVENING = ["+12135550101", "+12135550102", "+13035550103", "+13035550104", "+12145550105",
                       "+12145550106", "+12125550107"]  # Los Angeles, Denver, Dallas, New York
FLORIDIANS = ["+13055550108", "+13055550109", "+13055550110"]  # Miami
OVER_THE_CAP = "+12135550111"  # Los Angeles, 3 marketing texts this week already
ZOE = SMALL[0]  # a San Francisco number, a Florida address
assert ZOE.mobile_e164 is not None and ZOE.address is not None and ZOE.address.state == "FL"
MOVED = ZOE.mobile_e164


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


async def seed(pool: asyncpg.Pool, standin: TwilioStandin) -> SeededRun:
    numbers = SENT_IN_THE_EVENING + FLORIDIANS + [OVER_THE_CAP, MOVED]
    async with pool.acquire() as conn:
        org_id = await factories.make_org(conn, name="Quiet hours", time_zone="America/New_York",
                                          marketing_cap_texts=3, marketing_cap_days=7)
        await factories.make_standin_account(conn, org_id, standin.config)
        await factories.make_sender(conn, org_id, SENDER)
        earlier = await factories.make_campaign(conn, org_id, name="Earlier", state="completed")
        earlier_run = await factories.make_run(conn, org_id, earlier, state="completed", targeted=3)
        for days in (1, 2, 3):
            await conn.execute(
                "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, sent_at)"
                " VALUES ($1, $2, $3, $4, $5, 1, 'sent', $6)",
                earlier_run, uuid.uuid4(), org_id, SENDER, OVER_THE_CAP, EVENING - timedelta(days=days))
        campaign_id = await factories.make_campaign(conn, org_id, name="AGM reminder", body="x", state="sending")
        run_id = await factories.make_run(conn, org_id, campaign_id, state="sending", targeted=len(numbers),
                                          occurrence_at=EVENING)
    run = SeededRun(org_id, campaign_id, run_id, [SENDER])
    await snapshot_texts(pool, run, numbers, "The AGM is on Friday at 7 pm.")
    await pool.execute("UPDATE run_recipients SET address_state = $1 WHERE run_id = $2 AND e164 = $3",
                       ZOE.address.state, run_id, MOVED)
    return run


async def ledger(pool: asyncpg.Pool, run: SeededRun) -> dict[str, asyncpg.Record]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT to_number, state, held_until, sent_at FROM send_ledger WHERE run_id = $1",
                                run.run_id)
    return {r["to_number"]: r for r in rows}


async def the_evening_is_done(pool: asyncpg.Pool, run: SeededRun) -> dict[str, asyncpg.Record] | None:
    rows = await ledger(pool, run)
    states = {number: row["state"] for number, row in rows.items()}
    expected = {**dict.fromkeys(SENT_IN_THE_EVENING, "sent"), **dict.fromkeys(FLORIDIANS + [MOVED], "held"),
                OVER_THE_CAP: "frequency_capped"}
    return rows if states == expected else None


async def run_row(pool: asyncpg.Pool, run: SeededRun) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row: asyncpg.Record = await conn.fetchrow("SELECT * FROM campaign_runs WHERE id = $1", run.run_id)
        return row


async def test_an_evening_run_sends_the_west_holds_florida_until_8_am_and_skips_a_capped_member(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster,
    topic_prefix: str,
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    clock = ControlledClock(tmp_path / "clock-offset")
    clock.set(EVENING)
    env = dict(dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin),
               TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE=str(clock.path))
    run = await seed(db_pool, standin)
    processes: list[Process] = [start_dispatcher("dispatcher-0", env, tmp_path)]
    try:
        async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        evening = await eventually(lambda: the_evening_is_done(db_pool, run), timeout=DEADLINE_S, interval=0.5)
        assert {evening[n]["held_until"] for n in FLORIDIANS} == {FLORIDA_OPENS}
        assert evening[MOVED]["held_until"] == ALL_FLORIDA_OPENS
        async def counted() -> asyncpg.Record | None:  # the run's counts follow the ledger at the next commit
            row = await run_row(db_pool, run)
            return row if (row["sent"], row["frequency_capped"]) == (7, 1) else None
        figures = await eventually(counted, timeout=DEADLINE_S, interval=0.5)
        assert figures["state"] == "sending"

        # The hold is in the ledger: a killed dispatcher's successor keeps it, and sends nothing before 8 am.
        processes[0].kill()
        processes.append(start_dispatcher("dispatcher-1", env, tmp_path))
        await wait_http(f"{processes[1].url}/readyz", timeout=DEADLINE_S)
        clock.set(FLORIDA_OPENS - timedelta(minutes=1))
        await eventually(lambda: _released_or_waiting(db_pool, run), timeout=30, interval=1.0)
        assert set(await standin.messages_to()) == set(SENT_IN_THE_EVENING)

        clock.set(ALL_FLORIDA_OPENS + timedelta(seconds=5))  # every held member's window is open
        async def completed() -> asyncpg.Record | None:
            row = await run_row(db_pool, run)
            return row if row["state"] == "completed" else None
        done = await eventually(completed, timeout=DEADLINE_S, interval=0.5)
    finally:
        for process in processes:
            process.stop()
    assert (done["sent"], done["frequency_capped"], done["outside_window"]) == (11, 1, 0)
    by_number = await standin.messages_to()
    assert {n: len(m) for n, m in by_number.items()} == dict.fromkeys(SENT_IN_THE_EVENING + FLORIDIANS + [MOVED], 1)
    final = await ledger(db_pool, run)
    assert all(final[n]["sent_at"] < FLORIDA_OPENS for n in SENT_IN_THE_EVENING)
    assert all(final[n]["sent_at"] >= FLORIDA_OPENS for n in FLORIDIANS)
    assert final[MOVED]["sent_at"] >= ALL_FLORIDA_OPENS
    assert final[OVER_THE_CAP]["state"] == "frequency_capped" and OVER_THE_CAP not in by_number


async def _released_or_waiting(pool: asyncpg.Pool, run: SeededRun) -> bool:
    """A minute before 8 am the Floridians are still held, and unreleased (the successor has started)."""
    rows = await ledger(pool, run)
    return all(rows[n]["state"] == "held" for n in FLORIDIANS + [MOVED])
