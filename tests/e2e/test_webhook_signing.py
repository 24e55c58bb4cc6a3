"""Webhooks the Twilio stand-in signs with the auth token, or with a SharedKey and HMAC-SHA256 or HMAC-SHA1,
through the real opt-out service process: a member's STOP and a status callback are taken in every scheme,
and a SharedKey the organisation did not configure is refused."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.credentials import TEST_SECRETS
from harness.dispatch import TwilioStandin, seed_run
from harness.processes import Process, free_port, wait_http
from libs.common.topics import ALL_TOPICS
from services.api import settings_db
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDER = "+18885550130"

pytestmark = pytest.mark.timeout(120)


async def test_a_stop_and_a_status_callback_in_each_signing_scheme(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    optout_port = free_port()
    optout_url = f"http://127.0.0.1:{optout_port}"
    standin = TwilioStandin(tmp_path, [SENDER], inbound_url=f"{optout_url}/twilio/inbound")
    run = await seed_run(db_pool, standin, [SENDER], 0, rng=random.Random(2))
    cfg = standin.config
    env = {"TEXTPULSE_DATABASE_URL": database_url, **kafka.service_env("optout"),
           "TEXTPULSE_TOPIC_PREFIX": topic_prefix, "TEXTPULSE_HTTP_PORT": str(optout_port),
           "TEXTPULSE_LOG_FORMAT": "text"}
    optout = Process("optout", [sys.executable, "-m", "services.optout"], dict(os.environ, **env), tmp_path)
    try:
        await wait_http(f"{standin.url}/healthz")
        async with httpx.AsyncClient(base_url=standin.url, auth=(cfg.account_sid, cfg.auth_token)) as twilio:
            ours = (await twilio.post("/v1/Webhooks/SharedKeys", json={"friendlyName": "Textpulse"})).json()
            stranger = (await twilio.post("/v1/Webhooks/SharedKeys", json={"friendlyName": "not ours"})).json()
            async with db_pool.acquire() as conn:
                await conn.execute("UPDATE sms_accounts SET webhook_base_url = $2 WHERE org_id = $1",
                                   run.org_id, optout_url)
                await settings_db.set_webhook_shared_key(conn, TEST_SECRETS, run.org_id, ours["id"], ours["secret"])
            await wait_http(f"{optout_url}/readyz")

            schemes = [{"scheme": "auth_token"},
                       {"scheme": "shared_key", "shared_key_id": ours["id"], "algorithm": "HMAC_SHA256"},
                       {"scheme": "shared_key", "shared_key_id": ours["id"], "algorithm": "HMAC_SHA1"}]
            for n, scheme in enumerate(schemes):
                (await twilio.put("/_control/webhook-signing", json=scheme)).raise_for_status()
                member = f"+1415555{n:04d}"
                assert await _stop(twilio, member) == 200, scheme
                await eventually(lambda m=member: _suppressed(db_pool, run.org_id, m), timeout=10, interval=0.05)
                sid = await _send(twilio, cfg.account_sid, f"+1415556{n:04d}", f"{optout_url}/twilio/status")
                assert await _callback_answers(twilio, sid) == {200}, scheme
                await eventually(lambda s=sid: _status_stored(db_pool, run.org_id, s), timeout=10, interval=0.05)

            unknown = {"scheme": "shared_key", "shared_key_id": stranger["id"], "algorithm": "HMAC_SHA256"}
            (await twilio.put("/_control/webhook-signing", json=unknown)).raise_for_status()
            assert await _stop(twilio, "+14155559999") == 403
            sid = await _send(twilio, cfg.account_sid, "+14155569999", f"{optout_url}/twilio/status")
            assert await _callback_answers(twilio, sid) == {403}
            assert not await _suppressed(db_pool, run.org_id, "+14155559999")
            assert not await _status_stored(db_pool, run.org_id, sid)
    finally:
        optout.stop()
        standin.process.stop()
    assert "shared_key_unknown" in (tmp_path / "optout.log").read_text()


async def _stop(twilio: httpx.AsyncClient, member: str) -> int:
    """The member texts STOP; what the opt-out service answered the stand-in's signed webhook."""
    reply = await twilio.post("/_control/replies", json={"from": member, "to": SENDER, "body": "STOP"})
    reply.raise_for_status()
    return int(reply.json()["webhook"]["http_status"])


async def _send(twilio: httpx.AsyncClient, account_sid: str, to: str, callback: str) -> str:
    created = await twilio.post(f"/2010-04-01/Accounts/{account_sid}/Messages.json",
                                data={"From": SENDER, "To": to, "Body": "Renewals are due", "StatusCallback": callback})
    assert created.status_code == 201, created.text
    return str(created.json()["sid"])


async def _callback_answers(twilio: httpx.AsyncClient, sid: str) -> set[int | None]:
    """The answers to the message's status callbacks, once the last one (delivered) has had its answer."""
    async def delivered() -> list[dict[str, Any]] | None:
        attempts = (await twilio.get("/_control/callbacks", params={"message_sid": sid})).json()["callbacks"]
        return attempts if any(a["status"] == "delivered" for a in attempts) else None

    return {a["http_status"] for a in await eventually(delivered, timeout=20, interval=0.05)}


async def _suppressed(pool: asyncpg.Pool, org_id: object, phone: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) > 0 FROM suppressions WHERE org_id = $1 AND phone = $2",
                                    org_id, phone))


async def _status_stored(pool: asyncpg.Pool, org_id: object, sid: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) > 0 FROM webhook_requests WHERE org_id = $1 AND kind = 'status' "
                                    "AND params->>'MessageSid' = $2", org_id, sid))
