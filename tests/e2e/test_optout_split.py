"""The opt-out service split in two real processes (TEXTPULSE_OPTOUT_ROLE): an edge that answers Twilio's signed
webhooks and a workers process that applies them, as the Helm chart and the local stack run it."""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
from twilio.request_validator import RequestValidator

from harness import factories
from harness.factories import fresh_sid
from harness.processes import Process, free_port, wait_http
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDER = "+18885550130"


async def test_a_stop_answered_by_the_edge_alone_is_applied_once_the_workers_run(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    edge_port, workers_port = free_port(), free_port()
    edge_url, workers_url = f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{workers_port}"
    token = secrets.token_hex(16)
    async with db_pool.acquire() as conn:
        org_id = await factories.make_org(conn)
        account_sid = await factories.make_sms_account(conn, org_id, auth_token=token, webhook_base_url=edge_url)
        await factories.make_sender(conn, org_id, SENDER)
    env = dict(os.environ, TEXTPULSE_DATABASE_URL=database_url, **kafka.service_env("optout"),
               TEXTPULSE_TOPIC_PREFIX=topic_prefix, TEXTPULSE_LOG_FORMAT="text")

    def start(role: str, port: int) -> Process:
        return Process(f"optout-{role}", [sys.executable, "-m", "services.optout"],
                       dict(env, TEXTPULSE_OPTOUT_ROLE=role, TEXTPULSE_HTTP_PORT=str(port)), tmp_path)

    def stop_request(phone: str) -> tuple[bytes, dict[str, str]]:
        sid = fresh_sid()
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": account_sid, "From": phone, "To": SENDER,
                  "Body": "STOP", "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        signature = RequestValidator(token).compute_signature(f"{edge_url}/twilio/inbound", params)
        return urlencode(params).encode(), {"content-type": "application/x-www-form-urlencoded",
                                            "x-twilio-signature": signature}

    first, second = f"+1415{secrets.randbelow(10**7):07d}", f"+1415{secrets.randbelow(10**7):07d}"
    edge = start("edge", edge_port)
    workers: Process | None = None
    try:
        await wait_http(f"{edge_url}/readyz")
        async with httpx.AsyncClient(timeout=30) as client:
            body, headers = stop_request(first)
            answer = await client.post(f"{edge_url}/twilio/inbound", content=body, headers=headers)
            assert answer.status_code == 200 and "<Response/>" in answer.text
            # Nothing applies it yet: the edge has no processor.
            assert await _scopes(db_pool, org_id, first) == set()

            workers = start("workers", workers_port)
            await wait_http(f"{workers_url}/readyz")
            assert await eventually(lambda: _scopes(db_pool, org_id, first), timeout=60) == {"", SENDER}

            body, headers = stop_request(second)
            assert (await client.post(f"{edge_url}/twilio/inbound", content=body, headers=headers)).status_code == 200
            assert await eventually(lambda: _scopes(db_pool, org_id, second), timeout=60) == {"", SENDER}
            # The workers answer health checks only: Twilio's requests must reach an edge.
            refused = await client.post(f"{workers_url}/twilio/inbound", content=body, headers=headers)
            assert refused.status_code == 404

        async with db_pool.acquire() as conn:
            history = await conn.fetch("SELECT phone, action FROM consent_history WHERE org_id = $1", org_id)
            stored = await conn.fetchval("SELECT count(*) FROM webhook_requests WHERE org_id = $1", org_id)
        assert sorted((h["phone"], h["action"]) for h in history) == sorted(
            [(first, "opt_out")] * 2 + [(second, "opt_out")] * 2)  # one per scope, each STOP once
        assert stored == 2
    finally:
        edge.stop()
        if workers is not None:
            workers.stop()
    assert edge.proc.returncode == 0 and workers is not None and workers.proc.returncode == 0


async def _scopes(pool: asyncpg.Pool, org_id: uuid.UUID, phone: str) -> set[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT scope FROM suppressions WHERE org_id = $1 AND phone = $2", org_id, phone)
    return {r["scope"] for r in rows}
