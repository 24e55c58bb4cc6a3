"""A revocation in the member's own words while a run waits for their window, through real processes: the
iMIS and Twilio stand-ins, the opt-out service and a dispatcher on a controlled clock.

At 7:30 am Pacific the New Yorkers are texted and the Californian member is held until 8 am. Meanwhile the
member texts "Please stop texting me": the number is suppressed, a ``TEXTUNSUB`` activity is written to
iMIS, and when the window opens the held text is dropped, never sent; the run completes.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from harness.processes import Process, free_port, wait_http
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(420)

SENDER = "+18885550197"
MEMBER_ID, MEMBER = "23145", "+14155550134"  # Zoë Martin in the iMIS stand-in's small data set; San Francisco
NEW_YORKERS = ["+12125550141", "+12125550142"]
MORNING = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)  # a Thursday: 7:30 am Pacific, 10:30 am Eastern
PACIFIC_OPENS = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # 8 am Pacific
WAIT_S = 180  # a loaded 2-core machine, not a speed target


def _activities(imis_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{imis_url}/_control/activities?party_id={MEMBER_ID}", timeout=10) as response:
        found: list[dict[str, Any]] = json.loads(response.read())["activities"]
        return found


async def seed(pool: asyncpg.Pool, twilio: TwilioStandin, imis_url: str, optout_url: str) -> SeededRun:
    numbers = [*NEW_YORKERS, MEMBER]
    async with pool.acquire() as conn:
        org_id = await factories.make_org(conn, name="Revoked mid-run", time_zone="America/New_York")
        await factories.make_standin_account(conn, org_id, twilio.config, webhook_base_url=optout_url)
        await factories.make_sender(conn, org_id, SENDER, verification="verified", is_default=True)
        await factories.make_imis_account(conn, org_id, base_url=imis_url, writeback_target="activity")
        await conn.execute("INSERT INTO member_phone_index (org_id, phone, member_id) VALUES ($1, $2, $3)",
                           org_id, MEMBER, MEMBER_ID)
        campaign_id = await factories.make_campaign(conn, org_id, name="Renewals", body="x", state="sending")
        run_id = await factories.make_run(conn, org_id, campaign_id, state="sending", targeted=len(numbers),
                                          occurrence_at=MORNING)
    run = SeededRun(org_id, campaign_id, run_id, [SENDER])
    await snapshot_texts(pool, run, numbers, "Your membership renews on Monday.")
    return run


async def ledger_states(pool: asyncpg.Pool, run: SeededRun) -> dict[str, str]:
    rows = await pool.fetch("SELECT to_number, state FROM send_ledger WHERE run_id = $1", run.run_id)
    return {r["to_number"]: r["state"] for r in rows}


async def test_please_stop_texting_me_while_held_suppresses_writes_back_and_the_held_text_is_never_sent(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str,
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTPULSE_", "IMIS_STANDIN_"))}
    imis_port, optout_port = free_port(), free_port()
    imis_url, optout_url = f"http://127.0.0.1:{imis_port}", f"http://127.0.0.1:{optout_port}"
    twilio = TwilioStandin(tmp_path, [SENDER], inbound_url=f"{optout_url}/twilio/inbound")
    clock = ControlledClock(tmp_path / "clock-offset")
    clock.set(MORNING)
    optout_env = base_env | kafka.service_env("optout") | {
        "TEXTPULSE_DATABASE_URL": database_url, "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_ENV": "test",
        "TEXTPULSE_LOG_FORMAT": "text", "TEXTPULSE_HTTP_PORT": str(optout_port)}
    processes = [
        twilio.process,
        Process("imis", [sys.executable, "-m", "standins.imis", "--port", str(imis_port), "--dataset", "small"],
                base_env, tmp_path),
        Process("optout", [sys.executable, "-m", "services.optout"], optout_env, tmp_path),
        start_dispatcher("dispatcher", dict(dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix,
                                                           twilio),
                                            TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE=str(clock.path)), tmp_path),
    ]
    try:
        for url in (f"{twilio.url}/healthz", f"{imis_url}/healthz", f"{optout_url}/readyz",
                    f"{processes[-1].url}/readyz"):
            await wait_http(url, timeout=120)
        run = await seed(db_pool, twilio, imis_url, optout_url)
        async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        async def member_held() -> bool:
            return await ledger_states(db_pool, run) == {**dict.fromkeys(NEW_YORKERS, "sent"), MEMBER: "held"}

        await eventually(member_held, timeout=WAIT_S, interval=0.5)

        answer = await twilio.reply(MEMBER, SENDER, "Please stop texting me")
        assert answer["opted_out"] is False and answer["webhook"]["http_status"] == 200, answer  # not Twilio's word
        suppressed = await eventually(lambda: db_pool.fetch(
            "SELECT scope, source FROM suppressions WHERE org_id = $1 AND phone = $2", run.org_id, MEMBER),
            timeout=WAIT_S, interval=0.2)
        assert {r["source"] for r in suppressed} == {"reply"}
        activities = await eventually(lambda: _activities(imis_url) or None, timeout=WAIT_S)
        assert [(a["ACTIVITY_TYPE"], a["UF_1"]) for a in activities] == [("TEXTUNSUB", MEMBER)]

        clock.set(PACIFIC_OPENS + timedelta(seconds=5))
        done = await eventually(lambda: db_pool.fetchrow(
            "SELECT state, sent, dropped FROM campaign_runs WHERE id = $1 AND state = 'completed'", run.run_id),
            timeout=WAIT_S, interval=0.5)
        assert (done["sent"], done["dropped"]) == (len(NEW_YORKERS), 1)
        assert await ledger_states(db_pool, run) == {**dict.fromkeys(NEW_YORKERS, "sent"), MEMBER: "suppressed"}
        texted = await twilio.messages_to()
        assert {n: len(m) for n, m in texted.items()} == dict.fromkeys(NEW_YORKERS, 1)
    finally:
        for process in reversed(processes):
            process.stop()

