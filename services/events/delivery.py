"""The deliverer: POSTs each due delivery, signed, and retries with exponential back-off until it is
accepted (any 2xx) or its 24 hours are over (then it is failed; Settings can redeliver it).

A member's next event to an endpoint is not claimed while an earlier one is pending (``claim-due``), so each
member's events arrive in order; different members' are POSTed concurrently. A claimed delivery is leased:
a process that dies mid-POST leaves it to be tried again when the lease ends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from libs.common import event_signing, metrics
from libs.common.db import transaction
from libs.common.logging import get_logger
from libs.common.polling import drain, poll_forever
from libs.common.secret_store import WEBHOOK_ENDPOINT_SECRET, SecretStore
from services.events.db import Due, EventStore

log = get_logger(__name__)


@dataclass(frozen=True)
class DeliveryTuning:
    """Knobs with production defaults; tests shorten the waits."""

    poll_s: float = 1.0
    batch: int = 50
    timeout_s: float = 10.0
    first_retry_s: float = 30.0  # then doubling: 30 s, 1 min, 2 min, ... at most max_retry_s apart
    max_retry_s: float = 3600.0

    @property
    def lease_s(self) -> float:
        return self.timeout_s * 3


def next_attempt(attempts: int, tuning: DeliveryTuning, now: datetime) -> datetime:
    """When to try again after ``attempts`` failed attempts."""
    delay = min(tuning.first_retry_s * 2 ** (attempts - 1), tuning.max_retry_s)
    return now + timedelta(seconds=delay)


class Deliverer:
    def __init__(self, store: EventStore, secrets: SecretStore, *, tuning: DeliveryTuning = DeliveryTuning(),
                 client: httpx.AsyncClient | None = None) -> None:
        self._store = store
        self._secrets = secrets
        self._tuning = tuning
        self._client = client or httpx.AsyncClient(timeout=tuning.timeout_s, follow_redirects=False)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        try:
            await poll_forever(lambda: drain(self.run_once, self._tuning.batch), stalled="deliveries.stalled",
                               poll_s=self._tuning.poll_s, stopping=self._stopping)
        finally:
            await self._client.aclose()

    def request_stop(self) -> None:
        """``run`` finishes the POSTs in hand and returns."""
        self._stopping.set()

    async def run_once(self) -> int:
        """Claim what is due and deliver it; how many were claimed."""
        async with transaction(self._store.pool) as conn:
            due = await self._store.claim_due(conn, batch=self._tuning.batch, lease_s=self._tuning.lease_s)
            secrets = {d.id: await self._secrets.open(conn, d.org_id, WEBHOOK_ENDPOINT_SECRET, d.secret) for d in due}
        await asyncio.gather(*(self._deliver(d, secrets[d.id]) for d in due))
        return len(due)

    async def _deliver(self, due: Due, secret: str) -> None:
        body = due.body.encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "Textpulse-Events/1",
                   event_signing.TIMESTAMP_HEADER: str(timestamp),
                   event_signing.SIGNATURE_HEADER: event_signing.sign(secret, timestamp, body),
                   event_signing.EVENT_ID_HEADER: str(due.event_id), event_signing.EVENT_TYPE_HEADER: due.type}
        status: int | None = None
        try:
            response = await self._client.post(due.url, content=body, headers=headers)
            status = response.status_code
            if 200 <= status < 300:
                await self._store.delivered(due.id, status)
                metrics.EVENT_DELIVERIES.labels("delivered").inc()
                return
            error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        retry_at = next_attempt(due.attempts, self._tuning, datetime.now(UTC))
        failed = await self._store.attempt_failed(due.id, status, error, retry_at)
        metrics.EVENT_DELIVERIES.labels("failed" if failed else "retrying").inc()
        log.warning("delivery.failed" if failed else "delivery.retrying",
                    extra={"delivery_id": due.id, "attempts": due.attempts, "error": error})
