"""A tracked campaign through real processes: the audience service gives each member their own short link,
the dispatcher sends it (the Twilio stand-in records the body), and following it redirects to the original
URL and records one click for that member."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from harness import factories
from harness.dispatch import TwilioStandin, dispatcher_env, start_dispatcher
from harness.kafka import running_publisher
from harness.processes import Process, free_port, wait_http
from libs.common.events import CampaignDue
from libs.common.topics import ALL_TOPICS, CAMPAIGN_DUE
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(400)

SENDER = "+18885550190"
MEMBERS = {"m1": ("+14155550101", "Ann"), "m2": ("+14155550102", "Bo"), "m3": ("+14155550103", "Cy")}
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


async def seed(pool: asyncpg.Pool, standin: TwilioStandin) -> CampaignDue:
    async with pool.acquire() as conn, conn.transaction():
        org = await factories.make_org(conn, name="Links e2e")
        await factories.make_standin_account(conn, org, standin.config)
        await factories.make_sender(conn, org, SENDER, verification="verified", is_default=True)
        list_id = await conn.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'AGM') RETURNING id", org)
        for member_id, (mobile, name) in MEMBERS.items():
            await conn.execute("INSERT INTO member_list_entries (list_id, member_id, mobile, merge_values)"
                               " VALUES ($1, $2, $3, $4::jsonb)", list_id, member_id, mobile,
                               json.dumps({"first_name": name}))
        campaign = await factories.make_campaign(
            conn, org, body="Hi {{first_name}}, vote at https://example.org/agm?m={{member_id}} before Friday.",
            audience={"kind": "list", "list_id": str(list_id)}, state="sending", track_links=True)
        when = datetime.now(UTC)
        run = await factories.make_run(conn, org, campaign, occurrence_at=when)
    return CampaignDue(org_id=org, campaign_id=campaign, run_id=run, scheduled_for=when)


async def test_each_member_gets_their_own_short_link_and_following_it_redirects_and_records_the_click(
    db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str, tmp_path: Path,
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    standin = TwilioStandin(tmp_path, [SENDER])
    links_port, audience_port = free_port(), free_port()
    short_base = f"http://127.0.0.1:{links_port}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTPULSE_")} | {
        "TEXTPULSE_DATABASE_URL": database_url, "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_ENV": "test",
        "TEXTPULSE_LOG_FORMAT": "text", "TEXTPULSE_SHORT_LINK_BASE_URL": short_base}
    processes: list[Process] = [standin.process]
    try:
        processes.append(Process("links", [sys.executable, "-m", "services.links"],
                                 base_env | kafka.service_env("links") | {"TEXTPULSE_HTTP_PORT": str(links_port)},
                                 tmp_path))
        processes.append(Process("audience", [sys.executable, "-m", "services.audience"],
                                 base_env | kafka.service_env("audience") | {"TEXTPULSE_HTTP_PORT": str(audience_port)},
                                 tmp_path))
        processes.append(start_dispatcher("dispatcher", dispatcher_env(database_url, kafka.user("dispatcher"),
                                                                       topic_prefix, standin), tmp_path))
        for url in (standin.url, short_base, f"http://127.0.0.1:{audience_port}", processes[-1].url):
            await wait_http(f"{url}/readyz" if url != standin.url else f"{url}/healthz", timeout=120)
        event = await seed(db_pool, standin)
        async with running_publisher(kafka.user("scheduler"), topic_prefix) as (publisher, _):
            await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))

        async def all_sent() -> dict[str, list[dict[str, object]]] | None:
            by_number = await standin.messages_to()
            return by_number if len(by_number) == len(MEMBERS) else None

        by_number = await eventually(all_sent, timeout=240, interval=0.5)
        snapshot = {r["e164"]: r for r in await db_pool.fetch(
            "SELECT e164, recipient_id, member_id, body FROM run_recipients WHERE run_id = $1", event.run_id)}
        codes = {}
        async with httpx.AsyncClient(follow_redirects=False, timeout=60) as client:
            for number, messages in by_number.items():
                assert len(messages) == 1, f"{number} texted {len(messages)} times"
                body = str(messages[0]["body"])
                assert body == snapshot[number]["body"]
                shown = re.fullmatch(r"Hi (\w+), vote at (\S+) before Friday\.", body)
                assert shown is not None, body
                short = shown.group(2)
                assert short.startswith(short_base + "/") and len(short) == len(short_base) + 13
                member_id = snapshot[number]["member_id"]
                codes[short.rsplit("/", 1)[1]] = snapshot[number]["recipient_id"]
                response = await client.get(short, headers={"User-Agent": IPHONE})
                assert response.status_code == 302
                assert response.headers["location"] == f"https://example.org/agm?m={member_id}"
        assert len(codes) == len(MEMBERS)

        async def clicked() -> list[asyncpg.Record] | None:
            rows = await db_pool.fetch("SELECT code, recipient_id, is_bot FROM link_clicks WHERE run_id = $1",
                                       event.run_id)
            return rows if len(rows) >= len(MEMBERS) else None

        rows = await eventually(clicked, timeout=60, interval=0.2)
        assert sorted((r["code"], r["recipient_id"], r["is_bot"]) for r in rows) == sorted(
            (code, recipient, False) for code, recipient in codes.items())
        run = await db_pool.fetchrow("SELECT state, planned_segments FROM campaign_runs WHERE id = $1", event.run_id)
        assert run["planned_segments"] == len(MEMBERS)  # counted on the short link, one segment each
    finally:
        for process in reversed(processes):
            process.stop()
