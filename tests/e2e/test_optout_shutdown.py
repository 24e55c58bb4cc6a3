"""SIGTERM to the opt-out service while its broker is away: it exits within its bound, and loses nothing.

A real process on a broker of the test's own. Kafka goes away with a STOP's append still unsent in the
producer (the edge gave up on it after its append timeout and made the STOP durable in PostgreSQL before
the 200). aiokafka's ``stop`` would wait for that batch; the service's bounded stops drop it instead, so
the process exits, cleanly, and the STOP stays in PostgreSQL for the processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from twilio.request_validator import RequestValidator

from harness import factories
from harness.processes import Process, free_port, wait_http
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import ALL_TOPICS
from tests.conftest import eventually
from tests.integration.test_broker_restart import OwnBroker

TOKEN = "shutdown-test-token"
# The service's own bounds (each Kafka client's stop, the webhook append) are a few seconds each; this only
# keeps a hung process from hanging the suite, with room for a loaded machine.
EXIT_WITHIN_S = 90


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    own = OwnBroker(tmp_path / "kafka-var")
    await own.start()
    yield own
    with contextlib.suppress(ProcessLookupError):  # the test stopped it already
        await own.stop()


def _stop_params(account_sid: str, sender: str, phone: str) -> dict[str, str]:
    sid = "SM" + uuid.uuid4().hex
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": account_sid, "From": phone, "To": sender,
            "Body": "STOP", "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01"}


async def _post_stop(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> int:
    signature = RequestValidator(TOKEN).compute_signature(f"{url}/twilio/inbound", params)
    response = await client.post(f"{url}/twilio/inbound", content=urlencode(params).encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-Twilio-Signature": signature})
    return response.status_code


async def _suppressed(pool: asyncpg.Pool, org_id: uuid.UUID, phone: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM suppressions WHERE org_id = $1 AND phone = $2",
                                    org_id, phone))


async def _stored(pool: asyncpg.Pool, org_id: uuid.UUID, phone: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM webhook_requests WHERE org_id = $1 AND params->>'From' = $2",
                                   org_id, phone))


async def test_sigterm_during_a_kafka_outage_exits_within_its_bound_and_the_stop_is_kept(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, broker: OwnBroker
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(KafkaAccess(broker.bootstrap), ALL_TOPICS, prefix=prefix)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sender = "+1888" + str(uuid.uuid4().int)[:7]
    async with db_pool.acquire() as conn:
        org_id = await factories.make_org(conn)
        account_sid = await factories.make_sms_account(conn, org_id, auth_token=TOKEN, webhook_base_url=url)
    env = {k: v for k, v in os.environ.items() if "KAFKA" not in k}  # the broker of this test, in plain text
    env.update(TEXTPULSE_DATABASE_URL=database_url, TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
               TEXTPULSE_TOPIC_PREFIX=prefix, TEXTPULSE_HTTP_PORT=str(port), TEXTPULSE_LOG_FORMAT="text",
               TEXTPULSE_IMIS_BASE_URL="http://127.0.0.1:9")
    optout = Process("optout", [sys.executable, "-m", "services.optout"], env, tmp_path)
    try:
        await wait_http(f"{url}/readyz", timeout=120)
        async with httpx.AsyncClient(timeout=60) as client:
            before = "+1415" + str(uuid.uuid4().int)[:7]
            assert await _post_stop(client, url, _stop_params(account_sid, sender, before)) == 200
            await eventually(lambda: _suppressed(db_pool, org_id, before), timeout=60)

            await broker.stop()
            during = "+1415" + str(uuid.uuid4().int)[:7]
            assert await _post_stop(client, url, _stop_params(account_sid, sender, during)) == 200
            # Durable before the 200: in PostgreSQL, since the broker did not acknowledge it.
            assert await _stored(db_pool, org_id, during) == 1

        optout.proc.terminate()  # at once: the unsent append is still in the producer (30 s request timeout)
        try:
            code = await asyncio.to_thread(optout.proc.wait, EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the opt-out service did not exit within {EXIT_WITHIN_S} s of SIGTERM "
                        f"(log: {optout.log_path})")
        log = optout.log_path.read_text()
        assert code == 0, log[-3000:]
        assert "service.stopped" in log and "worker.crashed" not in log
        assert "kafka.stop_abandoned" in log  # the unsent append was dropped, not waited for
        assert await _stored(db_pool, org_id, during) == 1  # and the STOP is kept, for the next process
    finally:
        optout.stop()
