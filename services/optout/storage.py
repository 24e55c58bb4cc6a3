"""Where a verified webhook is made durable before Twilio gets its 200: Kafka first, PostgreSQL if not.

Twilio does not retry an inbound message, so a STOP answered 503 is lost. ``DurableStore.store``:

1. appends the request to ``textpulse.webhooks`` (idempotent producer, acks=all) and waits for the
   broker's ack, at most ``append_timeout_s``; the intake consumer (intake.py) writes it to
   ``webhook_requests`` later, so PostgreSQL may be down meanwhile;
2. when Kafka fails or is slow, writes the request to ``webhook_requests`` directly (WebhookWriter,
   the path used before Kafka); a request that reached both (the append timed out but the broker had
   it) is stored once, by its request id;
3. raises StoreUnavailable only when both failed: the route answers 503. The 503 promises nothing either
   way: an append that timed out stays with the Kafka client until it is delivered or expires, so a
   STOP answered 503 may still reach the broker when it comes back, and is then applied once.

After an append fails, Kafka is skipped for ``retry_s`` and then tried by one request at a time
(KafkaGate), so an outage costs the first requests a time-out, not every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

import asyncpg
import orjson
from aiokafka.errors import KafkaError

from libs.common.events import WebhookReceived
from libs.common.kafka import EventPublisher
from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE
from libs.common.topics import WEBHOOKS
from services.optout.db import IncomingWebhook, OptoutDb

log = get_logger(__name__)

Path = Literal["kafka", "postgres"]


class StoreUnavailable(Exception):
    """Neither Kafka nor PostgreSQL took the request."""


class KafkaGate:
    """Whether the next request should try Kafka. Pure: ``clock`` is passed in.

    Open while appends succeed. After a failure, closed for ``retry_s``; then one request at a time
    probes (``begin`` returns True to it alone) until one succeeds and opens the gate again.
    """

    def __init__(self, *, retry_s: float, clock: Callable[[], float]) -> None:
        self._retry_s = retry_s
        self._clock = clock
        self._healthy = True
        self._retry_at = 0.0
        self._probing = False

    def begin(self) -> bool:
        if self._healthy:
            return True
        if self._probing or self._clock() < self._retry_at:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        self._healthy, self._probing = True, False

    def abandoned(self) -> None:
        """The request that was trying was cancelled before it knew: let the next one try."""
        self._probing = False

    def failed(self) -> None:
        if self._healthy:
            log.warning("webhooks.kafka_bypassed", extra={"retry_s": self._retry_s})
        self._healthy, self._probing = False, False
        self._retry_at = self._clock() + self._retry_s

    @property
    def healthy(self) -> bool:
        return self._healthy


class WebhookWriter:
    """Stores webhooks in PostgreSQL with group commit: ``store`` returns once the row is committed.

    There is no added delay: a request arriving when no write is in flight is written at once; those
    arriving meanwhile are written together by the next INSERT (at most ``parallel`` in flight, up to
    ``max_batch`` rows each). Under load this turns hundreds of commits a second into tens.
    """

    def __init__(self, pool: asyncpg.Pool, db: OptoutDb, *, parallel: int = 2, max_batch: int = 500) -> None:
        self._pool = pool
        self._db = db
        self._parallel = parallel
        self._max_batch = max_batch
        self._waiting: list[tuple[IncomingWebhook, asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def store(self, webhook: IncomingWebhook) -> None:
        """Raises what the INSERT raised (the whole group fails together)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((webhook, done))
        if len(self._writers) < self._parallel:
            writer = asyncio.get_running_loop().create_task(self._write())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        await done

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            try:
                async with self._pool.acquire() as conn:  # one INSERT: autocommit
                    await self._db.insert_webhooks(conn, [webhook for webhook, _ in group])
            except BaseException as exc:  # handed to every request of the group
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, done in group:
                if not done.done():
                    done.set_result(None)


def partition_key(webhook: IncomingWebhook) -> str:
    """One member's messages (by the number as Twilio sent it), or one message's callbacks, in order."""
    name = "From" if webhook.kind == "inbound" else "MessageSid"
    return f"{webhook.org_id}:{webhook.params.get(name, '').strip()}"


def event_json(webhook: IncomingWebhook) -> bytes:
    """``as_event(webhook)`` as JSON, built without the pydantic model, which was a tenth of the edge's
    CPU per request. Always a valid WebhookReceived: the account SID is one sms_accounts holds (its CHECK is
    the event's pattern), the URL is never empty and the kind is one of the routes'."""
    return orjson.dumps({
        "schema_version": 1, "event_id": str(webhook.request_id), "occurred_at": webhook.received_at.isoformat(),
        "kind": webhook.kind, "org_id": str(webhook.org_id), "account_sid": webhook.account_sid,
        "url": webhook.url, "params": webhook.params,
    })


def as_event(webhook: IncomingWebhook) -> WebhookReceived:
    return WebhookReceived(event_id=webhook.request_id, occurred_at=webhook.received_at, kind=webhook.kind,
                           org_id=webhook.org_id, account_sid=webhook.account_sid, url=webhook.url,
                           params=webhook.params)


class DurableStore:
    def __init__(self, publisher: EventPublisher, writer: WebhookWriter, gate: KafkaGate, *,
                 append_timeout_s: float) -> None:
        self._publisher = publisher
        self._writer = writer
        self._gate = gate
        self._append_timeout_s = append_timeout_s

    async def store(self, webhook: IncomingWebhook) -> Path:
        """Which path made ``webhook`` durable; raises StoreUnavailable when neither could."""
        if self._gate.begin():
            try:
                async with asyncio.timeout(self._append_timeout_s):
                    await self._publisher.publish_json(WEBHOOKS, event_json(webhook), key=partition_key(webhook))
            except (KafkaError, TimeoutError) as exc:
                self._gate.failed()
                log.warning("webhook.append_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            except BaseException:
                self._gate.abandoned()
                raise
            else:
                self._gate.succeeded()
                return "kafka"
        try:
            await self._writer.store(webhook)
        except POSTGRES_RETRYABLE as exc:
            raise StoreUnavailable(f"Kafka and PostgreSQL unavailable ({type(exc).__name__}: {exc})") from exc
        return "postgres"
