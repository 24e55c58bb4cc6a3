"""A running opt-out service for tests: its app behind httpx, its workers, its topics, seeded organisations.

Usage (one per test module; each test uses its own numbers)::

    async with running_optout(database_url, kafka_bootstrap, db_pool) as optout:
        org = await optout.new_org()
        response = await optout.inbound(org, "STOP", phone)

Requests are signed the way Twilio signs them (RequestValidator.compute_signature over the account's
public URL), so tests exercise the real validation path; ``post`` takes any signature or body for the
forged cases. ``new_org(shared_key=True)`` gives the account a webhook SharedKey, and ``shared`` signs
with it the way Twilio does (the secret, the algorithm, the X-Twilio-Webhooks-Signature-Settings header).
``events`` collects every ConsentChanged and MessageStatus record the relay publishes. A 200 means the
request is in Kafka (or PostgreSQL): ``settled`` also waits for every request answered 200 to be stored.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, RequestValidator

from harness import factories
from harness.factories import fresh_sid
from harness.kafka import own_topics
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.runtime import Service, run_worker
from libs.common.settings import load_settings
from libs.common.topics import CONSENT, MESSAGE_STATUS, WEBHOOKS
from services.optout.main import OptoutTuning, build
from services.optout.processing import ProcessorTuning
from services.optout.writeback import WritebackTuning

PUBLIC_BASE = "https://sms.textpulse.test/hooks"  # with a path prefix, as behind a gateway
FAST = OptoutTuning(
    processor=ProcessorTuning(poll_s=0.05, retry_base_s=0.05, reconcile_every_s=0.1),
    writeback=WritebackTuning(poll_s=0.05, retry_base_s=0.05, retry_cap_s=0.2, lease_s=5.0),
    account_refresh_s=0.0,
    refusals_flush_s=0.05,
)


def fresh_phone() -> str:
    return f"+1415{random.randrange(10**7):07d}"


def fresh_shared_key_id() -> str:
    return "webhooks_sharedkey_" + secrets.token_hex(13)


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    account_sid: str
    auth_token: str
    sender: str
    run_id: uuid.UUID
    messaging_service_sid: str
    shared_key_id: str | None = None
    shared_key_secret: str | None = None


@dataclass
class Collected:
    """Events seen on the consent and status topics: (topic, key, value) in arrival order."""

    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def consent(self, phone: str) -> list[dict[str, Any]]:
        return [v for t, k, v in self.records if t == CONSENT.name and k == phone]

    def status(self, sid: str) -> list[dict[str, Any]]:
        return [v for t, k, v in self.records if t == MESSAGE_STATUS.name and k == sid]


@dataclass
class OptoutHarness:
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    service: Service
    events: Collected
    prefix: str = ""  # of this service's topics
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # its workers, then the event collector
    accepted: dict[str, int] = field(default_factory=dict)  # requests answered 200, by AccountSid

    def workers_alive(self) -> bool:
        """No worker has ended (in a real process, one that ends takes the process down: runtime.py)."""
        return not any(task.done() for task in self.tasks[: len(self.service.workers)])

    async def new_org(self, *, sender_kind: str = "toll_free", shared_key: bool = False) -> Org:
        """An organisation with a Twilio account (and a webhook SharedKey if asked), one sender, and one
        campaign run to hang ledger rows on."""
        slug = f"t-{uuid.uuid4().hex[:12]}"
        sender = f"+1888{random.randrange(10**7):07d}"
        key_id, key_secret = (fresh_shared_key_id(), secrets.token_urlsafe(32)) if shared_key else (None, None)
        async with self.pool.acquire() as conn, conn.transaction():
            org_id = await factories.make_org(conn, slug=slug)
            org = Org(org_id, fresh_sid("AC"), secrets.token_hex(16), sender, uuid.uuid4(), fresh_sid("MG"),
                      key_id, key_secret)
            await factories.make_sms_account(conn, org_id, account_sid=org.account_sid, auth_token=org.auth_token,
                                             webhook_base_url=PUBLIC_BASE, webhook_shared_key_id=key_id,
                                             webhook_shared_key_secret=key_secret)
            await factories.make_sender(conn, org_id, sender, kind=sender_kind)
            campaign = await factories.make_campaign(conn, org_id)
            await factories.make_run(conn, org_id, campaign, id=org.run_id, state="sending")
        return org

    async def add_ledger_row(self, org: Org, phone: str, sid: str | None = None, *, status: str | None = None) -> str:
        sid = sid or fresh_sid()
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, "
                "message_sid, twilio_status) VALUES ($1, $2, $3, $4, $5, 1, 'sent', $6, $7)",
                org.run_id, uuid.uuid4(), org.id, org.sender, phone, sid, status,
            )
        return sid

    # -- requests -------------------------------------------------------------------------------

    @staticmethod
    def sign(url: str, params: dict[str, str], token: str, algorithm: str = HMAC_SHA1) -> str:
        return RequestValidator(token).compute_signature(url, params, algorithm)

    async def post(
        self, path: str, *, content: bytes, signature: str | None, query: str = "",
        content_type: str = "application/x-www-form-urlencoded", settings: str | None = None,
    ) -> httpx.Response:
        headers = {"content-type": content_type}
        if signature is not None:
            headers["x-twilio-signature"] = signature
        if settings is not None:
            headers["x-twilio-webhooks-signature-settings"] = settings
        response = await self.client.post(path + (f"?{query}" if query else ""), content=content, headers=headers)
        if response.status_code == 200:
            account_sid = dict(parse_qsl(content.decode("ascii", "replace"))).get("AccountSid", "")
            self.accepted[account_sid] = self.accepted.get(account_sid, 0) + 1
        return response

    async def shared(
        self, org: Org, path: str, params: dict[str, str], *, algorithm: str = HMAC_SHA256,
        key_id: str | None = None, secret: str | None = None, header_algorithm: str | None = None,
    ) -> httpx.Response:
        """Signed as Twilio signs with a SharedKey: the org's own key unless ``key_id`` / ``secret`` say
        otherwise; ``header_algorithm`` is what the header claims (default: the algorithm used)."""
        secret = secret or org.shared_key_secret
        assert secret is not None, "the organisation has no SharedKey: give a secret"
        signature = self.sign(PUBLIC_BASE + path, params, secret, algorithm)
        settings = f"key={key_id or org.shared_key_id},algorithm={header_algorithm or algorithm}"
        return await self.post(path, content=urlencode(params).encode(), signature=signature, settings=settings)

    async def signed(self, org: Org, path: str, params: dict[str, str], *, query: str = "") -> httpx.Response:
        url = PUBLIC_BASE + path + (f"?{query}" if query else "")
        return await self.post(path, content=urlencode(params).encode(), query=query,
                               signature=self.sign(url, params, org.auth_token))

    def inbound_params(self, org: Org, body: str, phone: str, **extra: str) -> dict[str, str]:
        sid = extra.pop("MessageSid", fresh_sid())
        params = {
            "ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "94107", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received",
            "FromCity": "SAN FRANCISCO", "Body": body, "FromCountry": "US", "To": org.sender, "ToZip": "",
            "NumSegments": "1", "MessageSid": sid, "AccountSid": org.account_sid, "From": phone,
            "ApiVersion": "2010-04-01",
        }
        params.update(extra)
        return params

    async def inbound(self, org: Org, body: str, phone: str, **extra: str) -> httpx.Response:
        return await self.signed(org, "/twilio/inbound", self.inbound_params(org, body, phone, **extra))

    def status_params(self, org: Org, sid: str, status: str, error: str | None = None, **extra: str) -> dict[str, str]:
        params = {"SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": extra.pop("To", fresh_phone()),
                  "MessageSid": sid, "AccountSid": org.account_sid, "From": org.sender, "ApiVersion": "2010-04-01"}
        if error is not None:
            params["ErrorCode"] = error
        params.update(extra)
        return params

    async def status(self, org: Org, sid: str, status: str, error: str | None = None, **extra: str) -> httpx.Response:
        return await self.signed(org, "/twilio/status", self.status_params(org, sid, status, error, **extra))

    # -- what the database says -----------------------------------------------------------------

    async def scopes_suppressed(self, org: Org, phone: str) -> set[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT scope FROM suppressions WHERE org_id = $1 AND phone = $2", org.id, phone)
        return {r["scope"] for r in rows}

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def webhook_count(self, org: Org) -> int:
        return int(await self.fetchval("SELECT count(*) FROM webhook_requests WHERE org_id = $1", org.id))

    async def settled(self, org: Org) -> bool:
        """True once every webhook of ``org`` answered 200 is stored and processed, and every event published."""
        if await self.webhook_count(org) < self.accepted.get(org.account_sid, 0):
            return False
        pending = await self.fetchval(
            "SELECT (SELECT count(*) FROM webhook_requests WHERE org_id = $1 AND state = 'pending')"
            " + (SELECT count(*) FROM event_outbox WHERE published_at IS NULL AND error IS NULL)", org.id)
        return pending == 0


async def _collect(bootstrap: str, prefix: str, into: Collected) -> None:
    names = {CONSENT.full_name(prefix): CONSENT.name, MESSAGE_STATUS.full_name(prefix): MESSAGE_STATUS.name}
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    into.records.append((names[r.topic], r.key.decode() if r.key else "", json.loads(r.value)))
    finally:
        await consumer.stop()


@asynccontextmanager
async def running_optout(
    database_url: str, kafka_bootstrap: str, pool: asyncpg.Pool, *, tuning: OptoutTuning = FAST, **settings: Any
) -> AsyncIterator[OptoutHarness]:
    async with own_topics(kafka_bootstrap) as prefix:
        await ensure_topics(KafkaAccess(kafka_bootstrap), [CONSENT, MESSAGE_STATUS, WEBHOOKS], prefix=prefix)
        # Jobs other test modules left in the shared database must never reach a real host.
        settings.setdefault("imis_base_url", "http://127.0.0.1:9")
        config = load_settings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                               db_pool_max_size=20, **settings)
        collected = Collected()
        async with build(config, tuning) as service:
            tasks = [asyncio.create_task(run_worker(worker)) for worker in service.workers]
            tasks.append(asyncio.create_task(_collect(kafka_bootstrap, prefix, collected)))
            transport = httpx.ASGITransport(app=service.app)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://optout.test") as client:
                    yield OptoutHarness(client, pool, service, collected, prefix=prefix, tasks=tasks)
            finally:
                for task in tasks:
                    task.cancel()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                crashed = [r for r in results
                           if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
                if crashed:
                    raise AssertionError(f"a worker crashed: {crashed[0]!r}") from crashed[0]
