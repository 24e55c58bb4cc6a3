"""link-clicks -> ``link_clicks``, a batch at a time.

Clicks arrive in bursts of thousands a second, more than one INSERT per record keeps up with, so this
worker stores each fetched batch in one statement (``record-clicks``) and commits the offsets after it,
instead of the per-record handlers of :class:`libs.common.kafka.EventConsumer`. The contract is the same:
a record that is not a valid LinkClicked goes to ``link-clicks.dlq`` with its error; PostgreSQL errors
are retried, with backoff, until it answers, so nothing is committed that was not stored. A click stored
twice (redelivery, or the redirect's own fallback write) is one row: ``click_id`` is its event id.
"""

from __future__ import annotations

import asyncio
import random

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, KafkaError

from libs.common.errors import PermanentError
from libs.common.events import LinkClicked
from libs.common.kafka import EventPublisher, dead_letter, decode_event
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.logging import get_logger
from libs.common.topics import LINK_CLICKS
from services.links.db import LinkStore

log = get_logger(__name__)


class ClickRecorder:
    def __init__(self, store: LinkStore, kafka: KafkaAccess, *, group_id: str, publisher: EventPublisher,
                 prefix: str = "", session_timeout_ms: int = 10_000, batch: int = 2_000) -> None:
        self._store = store
        self._publisher = publisher
        self._group_id = group_id
        self._batch = batch
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            LINK_CLICKS.full_name(prefix), **client_kwargs(kafka), group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=session_timeout_ms // 3, fetch_max_wait_ms=100)

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        self._stopping.set()
        await self._consumer.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=self._batch)
            except KafkaError as exc:
                log.warning("consumer.fetch_failed", extra={"group": self._group_id, "error": repr(exc)})
                await asyncio.sleep(1)
                continue
            records = [record for part in batches.values() for record in part]
            if not records:
                continue
            clicks = [click for record in records if (click := await self._decode(record)) is not None]
            if not await self._store_all(clicks):
                return  # stopping: nothing committed, the partitions' next owner gets them again
            try:
                await self._consumer.commit({tp: part[-1].offset + 1 for tp, part in batches.items()})
            except (CommitFailedError, KafkaError) as exc:
                # A rebalance moved a partition, or the broker is away: redelivered, and stored once.
                log.warning("consumer.commit_lost", extra={"group": self._group_id, "error": repr(exc)})

    async def _decode(self, record: ConsumerRecord) -> LinkClicked | None:
        try:
            return decode_event(LINK_CLICKS, record.value)
        except PermanentError as exc:
            await dead_letter(self._publisher, record, exc.code, str(exc), group_id=self._group_id,
                              stopping=self._stopping)
            return None

    async def _store_all(self, clicks: list[LinkClicked]) -> bool:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                await self._store.record_clicks(clicks)
                return True
            except Exception as exc:  # noqa: BLE001 - PostgreSQL away or failing: keep the batch, retry
                log.warning("clicks.store_failed", extra={"clicks": len(clicks), "error": repr(exc)[:300]})
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 10.0)
        return False
