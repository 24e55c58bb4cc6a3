"""Two-way texting with real processes: the Twilio stand-in, the opt-out service and a dispatcher. A member's
reply reaches the inbox; a staff answer (``/api/v1/inbox`` on harness.bare_api)
reaches the stand-in once, and never for a suppressed member; HELP gets one answer."""

from __future__ import annotations

import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.bare_api import bare_api
from harness.dispatch import SeededRun, TwilioStandin, dispatcher_env, seed_run, start_dispatcher
from harness.processes import Process, free_port, wait_http
from libs.common.topics import ALL_TOPICS
from services.api.routes import inbox
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(180)

SENDER = "+18885550131"


@dataclass
class Stack:
    standin: TwilioStandin
    run: SeededRun
    api: httpx.AsyncClient
    staff: dict[str, str]
    pool: asyncpg.Pool

    async def texts_to(self, member: str) -> list[dict[str, Any]]:
        """What reached the stand-in for the member: our texts and Twilio's own automatic answers."""
        async with httpx.AsyncClient(base_url=self.standin.url, timeout=10) as client:
            messages = (await client.get("/_control/messages")).json()["messages"]
        return [m for m in messages if m["to"] == member and m["direction"] in ("outbound-api", "outbound-reply")]

    async def conversation(self, member: str) -> dict[str, Any] | None:
        items = (await self.api.get("/api/v1/inbox", headers=self.staff)).json()["items"]
        return next((c for c in items if c["phone"] == member), None)


@pytest.fixture
async def stack(tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster,
                topic_prefix: str) -> AsyncIterator[Stack]:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    optout_port = free_port()
    optout_url = f"http://127.0.0.1:{optout_port}"
    standin = TwilioStandin(tmp_path, [SENDER], inbound_url=f"{optout_url}/twilio/inbound")
    run = await seed_run(db_pool, standin, [SENDER], 0, rng=random.Random(7))
    await db_pool.execute("UPDATE sms_accounts SET webhook_base_url = $2 WHERE org_id = $1", run.org_id, optout_url)
    env = {"TEXTPULSE_DATABASE_URL": database_url, **kafka.service_env("optout"),
           "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_HTTP_PORT": str(optout_port),
           "TEXTPULSE_LOG_FORMAT": "text"}
    optout = Process("optout", [sys.executable, "-m", "services.optout"], dict(os.environ, **env), tmp_path)
    dispatcher = start_dispatcher("dispatcher", dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix,
                                                               standin), tmp_path)
    key = await factories.make_api_key(db_pool, run.org_id, name=f"staff-{uuid.uuid4().hex[:6]}")
    try:
        await wait_http(f"{standin.url}/healthz")
        await wait_http(f"{optout_url}/readyz")
        await wait_http(f"{dispatcher.url}/readyz", timeout=60)
        async with bare_api(db_pool, inbox.router) as api:
            yield Stack(standin, run, api, {"Authorization": f"Bearer {key}"}, db_pool)
    finally:
        dispatcher.stop()
        optout.stop()
        standin.process.stop()


async def test_a_reply_reaches_the_inbox_and_the_staff_answer_reaches_the_member_once(stack: Stack) -> None:
    member = "+14155550141"
    await stack.standin.reply(member, SENDER, "Is the AGM still on Friday?")
    # Within a second on a quiet machine (bench.webhooks measures it); the deadline is for a loaded one.
    conversation = await eventually(lambda: stack.conversation(member), timeout=20, interval=0.02)
    assert conversation["last_reply"] == "Is the AGM still on Friday?" and conversation["unread"] == 1

    key = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/api/v1/inbox/{conversation['id']}/replies"
    for _ in range(2):  # a retried request queues nothing more
        response = await stack.api.post(url, headers=stack.staff | key, json={"body": "Yes, 7 pm at the hall."})
        assert response.status_code == 202, response.text

    async def delivered() -> list[dict[str, Any]] | None:
        texts = [t for t in await stack.texts_to(member) if t["direction"] == "outbound-api"]
        return texts or None

    texts = await eventually(delivered, timeout=30, interval=0.05)
    assert [(t["from"], t["body"]) for t in texts] == [(SENDER, "Yes, 7 pm at the hall.")]
    ledger = await stack.pool.fetch("SELECT state FROM send_ledger WHERE org_id = $1 AND to_number = $2",
                                    stack.run.org_id, member)
    assert [r["state"] for r in ledger] == ["sent"]


async def test_a_suppressed_member_gets_no_staff_answer(stack: Stack) -> None:
    member = "+14155550142"
    await stack.standin.reply(member, SENDER, "Who is this?")
    conversation = await eventually(lambda: stack.conversation(member), timeout=20, interval=0.02)
    queued = await stack.api.post(f"/api/v1/inbox/{conversation['id']}/replies", json={"body": "The Association."},
                                  headers=stack.staff | {"Idempotency-Key": str(uuid.uuid4())})
    await stack.standin.reply(member, SENDER, "STOP")  # may land before or after the dispatcher sends

    async def suppressed() -> bool:
        thread = (await stack.api.get(f"/api/v1/inbox/{conversation['id']}", headers=stack.staff)).json()
        return not thread["can_reply"]

    await eventually(suppressed, timeout=20, interval=0.05)
    refused = await stack.api.post(f"/api/v1/inbox/{conversation['id']}/replies", json={"body": "Sorry!"},
                                   headers=stack.staff | {"Idempotency-Key": str(uuid.uuid4())})
    assert refused.status_code == 409 and refused.json()["code"] == "recipient_suppressed"

    async def settled() -> str | None:
        state = await stack.pool.fetchval("SELECT state FROM one_off_texts WHERE id = $1", queued.json()["id"])
        # failed: the STOP reached Twilio first, which refused the text (21610)
        return state if state in ("sent", "suppressed", "failed") else None

    first = await eventually(settled, timeout=30, interval=0.05)
    ours = [t["body"] for t in await stack.texts_to(member) if t["direction"] == "outbound-api"]
    assert ours == (["The Association."] if first == "sent" else [])
    assert "Sorry!" not in ours


async def test_help_gets_one_answer(stack: Stack) -> None:
    member = "+14155550143"
    answer = await stack.standin.reply(member, SENDER, "HELP")
    assert answer["auto_reply"]  # Twilio answers HELP itself (docs/twilio.md#opt-out-keywords)

    async def handled() -> str | None:
        return await stack.pool.fetchval(  # type: ignore[no-any-return]
            "SELECT outcome FROM webhook_requests WHERE org_id = $1 AND params->>'From' = $2 AND state = 'done'",
            stack.run.org_id, member)

    assert await eventually(handled, timeout=20, interval=0.05) == "help"
    texts = await stack.texts_to(member)
    assert [t["direction"] for t in texts] == ["outbound-reply"]
    assert await stack.pool.fetchval("SELECT count(*) FROM one_off_texts WHERE org_id = $1 AND phone = $2",
                                     stack.run.org_id, member) == 0
    assert await stack.conversation(member) is None
