"""Stopping aiokafka clients within a bound, so a process asked to stop during a broker outage exits.

aiokafka's ``AIOKafkaProducer.stop`` waits until every batch it holds is delivered or expires, and a
consumer's ``stop`` tries to leave its group: with the broker away, either can hold a SIGTERM for the
producer's request timeout or longer, past any supervisor's grace period.

Dropping what a producer still holds is safe only because nothing it holds was promised to anyone:
every send here is awaited for its acknowledgement (``EventPublisher``), and whoever sends keeps the
record until then (the event outbox, the send ledger; the opt-out edge writes a webhook to PostgreSQL
before its 200 when Kafka does not acknowledge it). A consumer that cannot leave its group is dropped by
the broker after its session timeout, and its uncommitted records go to the next owner.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from libs.common.logging import get_logger

log = get_logger(__name__)

STOP_TIMEOUT_S = 5.0


async def stop_producer(producer: AIOKafkaProducer, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop ``producer``, waiting at most ``timeout_s`` for its unsent batches; then they are dropped and its
    connections closed (at most ``timeout_s`` more). Returns within ``2 * timeout_s``."""
    stopping = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=timeout_s)
    if done:
        return
    log.warning("kafka.stop_abandoned", extra={"client": "producer", "timeout_s": timeout_s})
    # aiokafka has no public way to give up on unsent batches. ``stop`` waits for its flush or for the sender
    # task, whichever ends first: ending the sender lets it go on and close the connections. The flush left
    # waiting is cancelled with the event loop's other tasks. (Failing the batches instead races the sender's
    # own bookkeeping of them.) A broker that accepts connections but does not answer (a partition, a frozen
    # process) keeps the cancelled sender waiting for its requests in flight: then the close is abandoned
    # too, after ``timeout_s`` more, and what is left ends with the event loop.
    sender_task = producer._sender.sender_task
    if sender_task is not None:
        sender_task.cancel()
    await _bounded(stopping, "producer", timeout_s)


async def stop_consumer(consumer: AIOKafkaConsumer, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop ``consumer`` (leaving its group, if the broker answers); returns within ``2 * timeout_s``."""
    stopping = asyncio.ensure_future(consumer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=timeout_s)
    if not done:
        log.warning("kafka.stop_abandoned", extra={"client": "consumer", "timeout_s": timeout_s})
        stopping.cancel()
        # The group coordinator is what waits for the broker; its connections close with the client.
        await _bounded(asyncio.ensure_future(consumer._client.close()), "consumer", timeout_s)


async def _bounded(task: asyncio.Future[None], client: str, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(task, timeout_s)
    except TimeoutError:
        log.error("kafka.close_abandoned", extra={"client": client, "timeout_s": timeout_s})
