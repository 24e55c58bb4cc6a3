"""An organisation with an alphanumeric sender ID: the dispatcher (a real process) sends from it to countries
that take one, and from the sender's number to US and Canadian numbers, which never get one; through the
Twilio stand-in, which refuses an alphanumeric From to +1 numbers as Twilio does (21612)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from harness.dispatch import (
    ControlledClock,
    TwilioStandin,
    dispatcher_env,
    publish_recipients,
    seed_run,
    start_dispatcher,
)
from harness.kafka import running_publisher
from harness.processes import wait_http
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(400)

AFTERNOON = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # 1 pm Eastern, 10 am Pacific: no quiet hours anywhere

SENDER = "+18885550120"
ALPHA = "PhysioAlum"
ABROAD = ["+447700900101", "+33612345601", "+353851234501", "+447700900102"]
NANP = ["+14155550101", "+16135550101", "+14155550102"]  # US, Canada (Ottawa), US


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


async def test_the_alpha_sender_id_is_the_from_abroad_and_the_number_is_at_home(
    tmp_path: Path, standin: TwilioStandin, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster,
    topic_prefix: str,
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    numbers = ABROAD + NANP
    run = await seed_run(db_pool, standin, [SENDER], len(numbers), rng=random.Random(3), numbers=numbers)
    await db_pool.execute("UPDATE sms_accounts SET alpha_sender_id = $2 WHERE org_id = $1", run.org_id, ALPHA)
    clock = ControlledClock(tmp_path / "clock-offset")
    clock.set(AFTERNOON)
    env = dict(dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin),
               TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE=str(clock.path))
    dispatcher = start_dispatcher("dispatcher", env, tmp_path)
    try:
        async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)

        async def completed() -> asyncpg.Record | None:
            row = await db_pool.fetchrow("SELECT * FROM campaign_runs WHERE id = $1", run.run_id)
            return row if row["state"] == "completed" else None

        done = await eventually(completed, timeout=240, interval=0.5)
    finally:
        dispatcher.stop()
    assert (done["sent"], done["failed"]) == (len(numbers), 0)
    by_number = await standin.messages_to()
    assert {to: [m["from"] for m in sent] for to, sent in by_number.items()} == (
        {to: [ALPHA] for to in ABROAD} | {to: [SENDER] for to in NANP})
