"""A tracked campaign through every service it touches, as real processes: the audience service gives each
member their own short link, the dispatcher sends it, Twilio's status callbacks and a member's reply reach
the opt-out service, the links service redirects and records clicks, and the events service tells the
organisation's endpoint. Two members tap their link (one of them twice), a link-preview bot fetches the
third member's, one member replies: the run's funnel and its CSV export show exactly those clicks and
that reply, and the endpoint receives each event once, signed."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.bare_api import bare_api
from harness.dispatch import TwilioStandin, dispatcher_env, start_dispatcher
from harness.event_receiver import Receiver, receiving, register_endpoint, signed
from harness.kafka import running_publisher
from harness.processes import Process, free_port, wait_http
from libs.common.events import CampaignDue
from libs.common.topics import ALL_TOPICS, CAMPAIGN_DUE
from services.api.routes import run_reports
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(400)

SENDER = "+18885550190"
MEMBERS = {"m1": ("+14155550101", "Ann"), "m2": ("+14155550102", "Bo"), "m3": ("+14155550103", "Cy")}
TAPS = {"m1": 1, "m2": 2}  # members who tap their link, and how often
BOT_FETCHED = "m3"  # a messaging app fetches this member's link to draw a preview; no person taps it
REPLIER, REPLY = "m2", "Voted, thanks!"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
PREVIEW_BOT = "WhatsApp/2.23.20.0 A"


async def seed(pool: asyncpg.Pool, standin: TwilioStandin, webhook_base_url: str,
               events_url: str) -> tuple[CampaignDue, str]:
    async with pool.acquire() as conn, conn.transaction():
        org = await factories.make_org(conn, name="Links e2e")
        await factories.make_standin_account(conn, org, standin.config, webhook_base_url=webhook_base_url)
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
    await register_endpoint(pool, org, events_url)
    key = await factories.make_api_key(pool, org, name="funnel reader")
    return CampaignDue(org_id=org, campaign_id=campaign, run_id=run, scheduled_for=when), key


async def test_a_tracked_run_counts_exactly_the_taps_and_the_reply_and_tells_the_endpoint_once_signed(
    db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str, tmp_path: Path,
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    links_port, audience_port, optout_port, events_port = free_port(), free_port(), free_port(), free_port()
    short_base, optout_url = f"http://127.0.0.1:{links_port}", f"http://127.0.0.1:{optout_port}"
    standin = TwilioStandin(tmp_path, [SENDER], inbound_url=f"{optout_url}/twilio/inbound")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTPULSE_")} | {
        "TEXTPULSE_DATABASE_URL": database_url, "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_ENV": "test",
        "TEXTPULSE_LOG_FORMAT": "text", "TEXTPULSE_SHORT_LINK_BASE_URL": short_base}

    def service(name: str, port: int) -> Process:
        return Process(name, [sys.executable, "-m", f"services.{name}"],
                       base_env | kafka.service_env(name) | {"TEXTPULSE_HTTP_PORT": str(port)}, tmp_path)

    processes: list[Process] = [standin.process]
    async with receiving() as receiver:
        try:
            processes += [service("links", links_port), service("audience", audience_port),
                          service("optout", optout_port), service("events", events_port)]
            dispatcher = start_dispatcher("dispatcher", dispatcher_env(database_url, kafka.user("dispatcher"),
                                                                       topic_prefix, standin), tmp_path)
            processes.append(dispatcher)
            await wait_http(f"{standin.url}/healthz", timeout=120)
            for port in (links_port, audience_port, optout_port, events_port):
                await wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
            await wait_http(f"{dispatcher.url}/readyz", timeout=120)
            event, key = await seed(db_pool, standin, optout_url, receiver.url)
            async with running_publisher(kafka.user("scheduler"), topic_prefix) as (publisher, _):
                await publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))
            codes = await follow_the_links(db_pool, standin, event, short_base)
            answer = await standin.reply(MEMBERS[REPLIER][0], SENDER, REPLY)
            assert answer["webhook"]["http_status"] == 200, answer
            await check_funnel_and_export(db_pool, event, key, codes)
            await check_events(receiver, event)
        finally:
            for process in reversed(processes):
                process.stop()


async def follow_the_links(pool: asyncpg.Pool, standin: TwilioStandin, event: CampaignDue,
                           short_base: str) -> dict[str, str]:
    """Waits for the three texts, checks each carries its member's own short link, and follows them as
    TAPS and BOT_FETCHED say; returns each member's short code."""

    async def all_sent() -> dict[str, list[dict[str, object]]] | None:
        by_number = await standin.messages_to()
        return by_number if len(by_number) == len(MEMBERS) else None

    by_number = await eventually(all_sent, timeout=240, interval=0.5)
    snapshot = {r["e164"]: r for r in await pool.fetch(
        "SELECT e164, member_id, body FROM run_recipients WHERE run_id = $1", event.run_id)}
    codes: dict[str, str] = {}
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
            codes[member_id] = short.rsplit("/", 1)[1]
            agents = [IPHONE] * TAPS.get(member_id, 0) + [PREVIEW_BOT] * (member_id == BOT_FETCHED)
            for agent in agents:
                response = await client.get(short, headers={"User-Agent": agent})
                assert response.status_code == 302
                assert response.headers["location"] == f"https://example.org/agm?m={member_id}"
    assert len(set(codes.values())) == len(MEMBERS)
    return codes


async def check_funnel_and_export(pool: asyncpg.Pool, event: CampaignDue, key: str, codes: dict[str, str]) -> None:
    people_taps = sum(TAPS.values())
    path = f"/api/v1/campaigns/{event.campaign_id}/runs/{event.run_id}"
    headers = {"Authorization": f"Bearer {key}"}
    async with bare_api(pool, run_reports.router) as api:

        async def settled() -> dict[str, Any] | None:
            funnel: dict[str, Any] = (await api.get(f"{path}/funnel", headers=headers)).json()
            done = (funnel["delivered"] == len(MEMBERS) and funnel["clicked"]["people_clicks"] == people_taps
                    and funnel["clicked"]["bot_clicks"] == 1 and funnel["replied"] == 1)
            return funnel if done else None

        funnel = await eventually(settled, timeout=120, interval=0.5)
        export = await api.get(f"{path}/recipients.csv", headers=headers)
    assert (funnel["targeted"], funnel["excluded"], funnel["sent"], funnel["failed"]) == (len(MEMBERS), 0, 3, 0)
    assert funnel["clicked"] == {"people": len(TAPS), "people_clicks": people_taps, "bots": 1, "bot_clicks": 1}
    assert funnel["opted_out_after"] == 0
    assert export.status_code == 200
    rows = {r["member_id"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert {m: (int(r["clicks"]), int(r["bot_clicks"])) for m, r in rows.items()} == {
        m: (TAPS.get(m, 0), int(m == BOT_FETCHED)) for m in MEMBERS}
    assert {m: r["reply"] for m, r in rows.items()} == {m: REPLY if m == REPLIER else "" for m in MEMBERS}
    assert {r["outcome"] for r in rows.values()} == {"delivered"}
    clicks = await pool.fetch("SELECT code, is_bot FROM link_clicks WHERE run_id = $1", event.run_id)
    assert Counter((c["code"], c["is_bot"]) for c in clicks) == Counter(
        {(codes[m], False): n for m, n in TAPS.items()} | {(codes[BOT_FETCHED], True): 1})


async def check_events(receiver: Receiver, event: CampaignDue) -> None:
    expected = Counter({"sent": len(MEMBERS), "delivered": len(MEMBERS), "clicked": sum(TAPS.values()),
                        "replied": 1, "run_completed": 1})
    await eventually(lambda: Counter(receiver.types()) >= expected, timeout=120, interval=0.5)
    assert Counter(receiver.types()) == expected, receiver.types()
    assert len({r.event["id"] for r in receiver.accepted}) == len(receiver.accepted)
    assert all(signed(r) for r in receiver.accepted)
    forged = receiver.accepted[0]
    assert not signed(forged, secret="whsec_someone-else")
    assert not signed(forged, body=forged.body + b" ")
    completed = next(r.event for r in receiver.accepted if r.event["type"] == "run_completed")
    assert completed["data"]["run_id"] == str(event.run_id)
