"""iMIS Text Messenger's opt-out tracking, through real processes: the iMIS and Twilio stand-ins, the opt-out
service and the audience service, each its own ``python -m``.

A member texts STOP: a ``TEXTUNSUB`` activity appears in iMIS, and the next run of a campaign whose IQA
excludes ``TEXTUNSUB`` members (as audiences built for Text Messenger do) does not even read the member
from iMIS (no snapshot row at all, where Textpulse's own suppression would leave an ``excluded`` one).
START moves the activity to ``TEXTUNSUB_A`` and the member is back in the next run.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from harness import factories
from harness.dispatch import TwilioStandin
from harness.kafka import running_publisher
from harness.processes import Process, free_port, wait_http
from libs.common.events import CampaignDue
from libs.common.topics import ALL_TOPICS, CAMPAIGN_DUE
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(180)

SENDER = "+18885550121"
MEMBER_ID, MEMBER = "23145", "+14155550134"  # Zoë Martin in the stand-in's small data set
QUERY = "$/Text Messenger/SMS Audience"


def _activities(imis_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{imis_url}/_control/activities?party_id={MEMBER_ID}", timeout=10) as response:
        found: list[dict[str, Any]] = json.loads(response.read())["activities"]
        return found


async def _run(pool: asyncpg.Pool, kafka: KafkaCluster, prefix: str, org_id: uuid.UUID, campaign_id: uuid.UUID,
               when: datetime) -> dict[str, str]:
    """A run of the campaign through the audience process; its snapshot as member id -> status."""
    run_id = await factories.make_run(pool, org_id, campaign_id, occurrence_at=when)
    event = CampaignDue(org_id=org_id, campaign_id=campaign_id, run_id=run_id, scheduled_for=when)
    async with running_publisher(kafka.user("scheduler"), prefix) as (publisher, _):
        await publisher.publish(CAMPAIGN_DUE, event, key=str(campaign_id))
    await eventually(lambda: pool.fetchval("SELECT state NOT IN ('pending', 'resolving') FROM campaign_runs "
                                           "WHERE id = $1", run_id), timeout=60)
    rows = await pool.fetch("SELECT member_id, status FROM run_recipients WHERE run_id = $1", run_id)
    return {r["member_id"]: r["status"] for r in rows}


async def test_stop_and_start_as_text_messenger_records_them_and_the_next_run_follows(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTPULSE_", "IMIS_STANDIN_"))}
    imis_port, optout_port, audience_port = free_port(), free_port(), free_port()
    imis_url, optout_url = f"http://127.0.0.1:{imis_port}", f"http://127.0.0.1:{optout_port}"
    common = {"TEXTPULSE_DATABASE_URL": database_url, "TEXTPULSE_TOPIC_PREFIX": topic_prefix,
              "TEXTPULSE_ENV": "test", "TEXTPULSE_LOG_FORMAT": "text", "TEXTPULSE_IMIS_BASE_URL": imis_url}
    imis = Process("imis", [sys.executable, "-m", "standins.imis", "--port", str(imis_port), "--dataset", "small"],
                   base_env, tmp_path)
    twilio = TwilioStandin(tmp_path, [SENDER], inbound_url=f"{optout_url}/twilio/inbound")
    processes = [imis]
    try:
        async with db_pool.acquire() as conn:
            org_id = await factories.make_org(conn, name="Text Messenger move")
            await factories.make_standin_account(conn, org_id, twilio.config, webhook_base_url=optout_url)
            await factories.make_sender(conn, org_id, SENDER, verification="verified", is_default=True)
            await factories.make_imis_account(conn, org_id, base_url=imis_url, writeback_target="activity")
            campaign_id = await factories.make_campaign(
                conn, org_id, body="Hi {{first_name|there}}, the AGM is on Friday.", state="sending",
                audience={"kind": "iqa", "query": QUERY}, segment_limit=100000)
        processes.append(Process("optout", [sys.executable, "-m", "services.optout"], base_env | common
                                 | kafka.service_env("optout") | {"TEXTPULSE_HTTP_PORT": str(optout_port)}, tmp_path))
        processes.append(Process("audience", [sys.executable, "-m", "services.audience"], base_env | common
                                 | kafka.service_env("audience") | {"TEXTPULSE_HTTP_PORT": str(audience_port)},
                                 tmp_path))
        await wait_http(f"{imis_url}/healthz")
        await wait_http(f"{twilio.url}/healthz")
        await wait_http(f"{optout_url}/readyz")
        await wait_http(f"http://127.0.0.1:{audience_port}/readyz")
        start = datetime.now(UTC)

        first = await _run(db_pool, kafka, topic_prefix, org_id, campaign_id, start - timedelta(minutes=3))
        assert first.get(MEMBER_ID) == "queued" and len(first) > 1  # and the run indexed the member's number

        await twilio.reply(MEMBER, SENDER, "STOP")
        activities = await eventually(lambda: _activities(imis_url) or None, timeout=30)
        assert [(a["ACTIVITY_TYPE"], a["UF_1"]) for a in activities] == [("TEXTUNSUB", MEMBER)]
        assert datetime.fromisoformat(activities[0]["TRANSACTION_DATE"]) >= start.replace(tzinfo=None, microsecond=0)

        second = await _run(db_pool, kafka, topic_prefix, org_id, campaign_id, start - timedelta(minutes=2))
        assert MEMBER_ID not in second  # iMIS's IQA left the member out
        assert set(second) == set(first) - {MEMBER_ID}

        await twilio.reply(MEMBER, SENDER, "START")
        await eventually(lambda: [a["ACTIVITY_TYPE"] for a in _activities(imis_url)] == ["TEXTUNSUB_A"] or None,
                         timeout=30)
        third = await _run(db_pool, kafka, topic_prefix, org_id, campaign_id, start - timedelta(minutes=1))
        assert third.get(MEMBER_ID) == "queued"
        jobs = await db_pool.fetch("SELECT action, state FROM imis_outbox WHERE org_id = $1 ORDER BY id", org_id)
        assert [tuple(j) for j in jobs] == [("opt_out", "done"), ("opt_in", "done")]
    finally:
        for process in reversed(processes):
            process.stop()
        twilio.process.stop()
