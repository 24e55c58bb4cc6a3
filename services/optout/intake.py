"""The intake consumer: ``textpulse.webhooks`` -> ``webhook_requests``, in batches, each request once.

The edge (storage.py) answered Twilio 200 once Kafka had the request; this worker is what puts it where
the WebhookProcessor applies it. Contract (validate -> store -> commit ``offset + 1``, as kafka.py's
consumer, but a whole fetched batch per statement, which is what lets one process keep up with Twilio):

- Each record is validated as a WebhookReceived; one that is not goes to ``textpulse.webhooks.dlq``
  with its error code (kafka.py's ``decode_event`` and ``dead_letter``).
- The valid ones of a partition's batch are written in one INSERT, in offset order. The database must
  agree with the event: its account SID belongs to its organisation. When it does not, the account is read
  once more: if it had already moved to another organisation when the edge received the request (the edge
  tagged it from an account cached for up to 5 s), the request is stored for that organisation, its owner;
  otherwise it is not stored and is dead-lettered (``account_not_of_org``). A request id stored before is
  skipped: a redelivered record or the edge's direct write of the same request is stored once.
- Offsets are committed only after the batch is stored. When PostgreSQL or Kafka is briefly unavailable
  (libs/common/outages.py) the same batch is tried again after a growing back-off (polling.py); nothing
  is fetched meanwhile, and nothing is lost. After a rebalance the new owner gets the uncommitted records
  again, which are then skipped.
- After each stored batch ``wake`` is set, so the processor applies a STOP within milliseconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from libs.common import metrics
from libs.common.errors import PermanentError
from libs.common.events import WebhookReceived
from libs.common.kafka import EventPublisher, dead_letter, decode_event
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.kafka_shutdown import stop_consumer
from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE
from libs.common.polling import poll_forever
from libs.common.topics import WEBHOOKS
from services.optout.db import IncomingWebhook, OptoutDb

log = get_logger(__name__)


def as_webhook(event: WebhookReceived) -> IncomingWebhook:
    return IncomingWebhook(event.event_id, event.kind, event.org_id, event.account_sid, event.url, event.params,
                           event.occurred_at)


class WebhookIntake:
    def __init__(
        self,
        pool: asyncpg.Pool,
        db: OptoutDb,
        publisher: EventPublisher,
        *,
        kafka: KafkaAccess,
        group_id: str,
        prefix: str = "",
        wake: asyncio.Event,
        batch: int = 1000,
        session_timeout_ms: int = 10_000,
        max_stall_s: float = 1.0,
        group_instance_id: str | None = None,
    ) -> None:
        self._pool = pool
        self._max_stall_s = max_stall_s  # PostgreSQL is tried again at least this often while it is away
        self._db = db
        self._publisher = publisher
        self._group_id = group_id
        self._wake = wake
        self._batch = batch
        self._consumer = AIOKafkaConsumer(
            WEBHOOKS.full_name(prefix),
            **client_kwargs(kafka),
            group_id=group_id,
            group_instance_id=group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=session_timeout_ms // 3,
            fetch_max_wait_ms=20,
            # A batch is held while PostgreSQL is away; past this the group moves the partitions on and
            # their records come again to whoever owns them (they are skipped if already stored).
            max_poll_interval_ms=30 * 60_000,
        )
        self._held: dict[TopicPartition, list[ConsumerRecord]] = {}
        self._never = asyncio.Event()  # dead-lettering retries until the broker takes the letter
        self._lag = metrics.ConsumerLag(group_id)
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        """Within a bound: what was not committed is fetched again by the next owner, and skipped if stored."""
        await stop_consumer(self._consumer)

    def request_stop(self) -> None:
        """``run`` returns after the batch in hand is stored and committed (or, during an outage, at once)."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until asked to stop; an outage of either dependency is waited out on the same batch."""
        await poll_forever(self.take_batch, stalled="webhooks.intake_stalled", poll_s=0.0, first_stall_s=0.2,
                           max_stall_s=self._max_stall_s, stopping=self._stopping)

    async def take_batch(self) -> int:
        """Fetch (unless a batch is held from a failed pass), store, commit; returns the records taken."""
        if not self._held:
            self._held = await self._consumer.getmany(timeout_ms=500, max_records=self._batch)
            self._lag.retain(self._consumer)
        taken = 0
        for tp in list(self._held):
            records = self._held[tp]
            await self._store(records)
            await self._commit(tp, records[-1].offset + 1)
            del self._held[tp]
            taken += len(records)
        if taken:
            self._wake.set()
        return taken

    async def _store(self, records: list[ConsumerRecord]) -> None:
        valid: list[tuple[ConsumerRecord, IncomingWebhook]] = []
        for record in records:
            try:
                valid.append((record, as_webhook(decode_event(WEBHOOKS, record.value))))
            except PermanentError as exc:
                await self._dead_letter(record, exc.code, str(exc))
        if not valid:
            return
        try:
            refused = await self._insert([webhook for _, webhook in valid])
        except POSTGRES_RETRYABLE:
            raise
        except Exception:  # noqa: BLE001 - isolate the record PostgreSQL will not take; the others go in
            log.warning("webhooks.intake_batch_failed", extra={"records": len(valid)}, exc_info=True)
            refused = set()
            kept = []
            for record, webhook in valid:
                try:
                    refused |= await self._insert([webhook])
                    kept.append((record, webhook))
                except POSTGRES_RETRYABLE:
                    raise
                except Exception as exc:  # noqa: BLE001 - dead-lettered with the error, for a person to look at
                    await self._dead_letter(record, "store_failed", f"{type(exc).__name__}: {exc}")
            valid = kept
        mismatched = [(record, webhook) for record, webhook in valid if webhook.request_id in refused]
        if not mismatched:
            return
        for record, webhook in await self._store_for_current_owner(mismatched):
            await self._dead_letter(record, "account_not_of_org",
                                    f"account {webhook.account_sid} is not organisation {webhook.org_id}'s")

    async def _store_for_current_owner(
        self, mismatched: list[tuple[ConsumerRecord, IncomingWebhook]]
    ) -> list[tuple[ConsumerRecord, IncomingWebhook]]:
        """Store, under the account's owner, each webhook whose account had already moved to that owner when
        the edge received it (the edge tagged it from an account it had cached before the move); returns the
        others. Idempotent: a webhook stored before is skipped."""
        async with self._pool.acquire() as conn:
            owners = await self._db.account_owners(conn, sorted({webhook.account_sid for _, webhook in mismatched}))
        moved: dict[UUID, IncomingWebhook] = {}
        for _, webhook in mismatched:
            owner = owners.get(webhook.account_sid)
            if owner is not None and owner.org_id != webhook.org_id and owner.since <= webhook.received_at:
                moved[webhook.request_id] = replace(webhook, org_id=owner.org_id)
        refused = await self._insert(list(moved.values())) if moved else set()
        for webhook in moved.values():
            if webhook.request_id not in refused:
                log.info("webhooks.account_moved", extra={"request_id": str(webhook.request_id),
                                                          "account_sid": webhook.account_sid,
                                                          "org_id": str(webhook.org_id)})
        return [(record, webhook) for record, webhook in mismatched
                if webhook.request_id not in moved or webhook.request_id in refused]

    async def _insert(self, webhooks: list[IncomingWebhook]) -> set[UUID]:
        async with self._pool.acquire() as conn:
            return await self._db.intake_webhooks(conn, webhooks)

    async def _dead_letter(self, record: ConsumerRecord, code: str, error: str) -> None:
        await dead_letter(self._publisher, record, code, error, group_id=self._group_id, stopping=self._never)

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        try:
            await self._consumer.commit({tp: next_offset})
            self._lag.observe(self._consumer, tp, next_offset)
        except CommitFailedError:
            # The partition moved to another member: it redelivers from the last commit, and is skipped.
            log.warning("webhooks.intake_commit_lost", extra={"partition": str(tp), "offset": next_offset})
