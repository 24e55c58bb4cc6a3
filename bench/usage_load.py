"""The load ``bench.usage_streams`` runs: send-results and their statuses, the rows they point at, and the
rollups they must produce.

    load = make_load(20_000)             # 10,000 send-results on 12 runs and one final status each
    await produce(kafka, prefix, load)
    await seed(conn, load)               # in each implementation's own database
    load.expected()                      # {run_id: {"messages": ..., "segments": ..., ...}}
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from libs.common.events import Event, MessageStatus, SendResult
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.topics import CONSENT, MESSAGE_STATUS, SEND_RESULTS, TopicSpec

TOPICS: tuple[TopicSpec[Event], ...] = (SEND_RESULTS, MESSAGE_STATUS, CONSENT)
RUNS = 12
SENDER = "+18885550100"
COUNTERS = ("messages", "segments", "delivered", "undelivered")


@dataclass(frozen=True)
class Message:
    run_id: uuid.UUID
    recipient_id: uuid.UUID
    sid: str
    to: str
    segments: int
    delivered: bool


@dataclass
class Load:
    """The generated events and the rollups they must produce, per run."""

    org_id: uuid.UUID
    campaign_id: uuid.UUID
    run_ids: list[uuid.UUID]
    messages: list[Message]

    @property
    def events(self) -> int:
        return 2 * len(self.messages)

    def expected(self) -> dict[uuid.UUID, dict[str, int]]:
        totals = {run: dict.fromkeys(COUNTERS, 0) for run in self.run_ids}
        for m in self.messages:
            row = totals[m.run_id]
            row["messages"] += 1
            row["segments"] += m.segments
            row["delivered" if m.delivered else "undelivered"] += 1
        return totals


def make_load(events: int) -> Load:
    run_ids = [uuid.uuid4() for _ in range(RUNS)]
    messages = [Message(run_ids[i % RUNS], uuid.uuid4(), f"SM{uuid.uuid4().hex}", f"+1415555{i % 10_000:04d}",
                        1 + i % 3, i % 10 != 0) for i in range(events // 2)]
    return Load(uuid.uuid4(), uuid.uuid4(), run_ids, messages)


async def seed(conn: asyncpg.Connection, load: Load) -> None:
    """The organisation, its runs and the dispatcher's send ledger that the send-results point at."""
    await conn.execute("INSERT INTO organisations (id, slug, name) VALUES ($1, $2, 'Bench')",
                       load.org_id, f"bench-{load.org_id.hex[:12]}")
    await conn.execute("INSERT INTO campaigns (id, org_id, name, body) VALUES ($1, $2, 'Bench', 'Hi')",
                       load.campaign_id, load.org_id)
    for run_id in load.run_ids:
        await conn.execute("INSERT INTO campaign_runs (id, org_id, campaign_id, occurrence_at, state) "
                           "VALUES ($1, $2, $3, now(), 'sending')", run_id, load.org_id, load.campaign_id)
    await conn.copy_records_to_table(
        "send_ledger", columns=["run_id", "recipient_id", "org_id", "sender", "to_number", "segments", "state",
                                "message_sid"],
        records=[(m.run_id, m.recipient_id, load.org_id, SENDER, m.to, m.segments, "sent", m.sid)
                 for m in load.messages])


async def produce(kafka: KafkaAccess, prefix: str, load: Load) -> None:
    await ensure_topics(kafka, TOPICS, prefix=prefix)
    producer = AIOKafkaProducer(**client_kwargs(kafka), linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        sent_at = datetime.now(UTC)
        pending = []
        for m in load.messages:
            result_event = SendResult(org_id=load.org_id, run_id=m.run_id, recipient_id=m.recipient_id, sender=SENDER,
                                      to=m.to, outcome="sent", message_sid=m.sid, segments=m.segments,
                                      occurred_at=sent_at)
            pending.append(await producer.send(SEND_RESULTS.full_name(prefix), result_event.model_dump_json().encode(),
                                               key=str(m.run_id).encode()))
        for m in load.messages:
            status = MessageStatus(org_id=load.org_id, message_sid=m.sid,
                                   status="delivered" if m.delivered else "undelivered",
                                   error_code=None if m.delivered else 30003)
            pending.append(await producer.send(MESSAGE_STATUS.full_name(prefix), status.model_dump_json().encode(),
                                               key=m.sid.encode()))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
