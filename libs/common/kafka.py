"""The Kafka layer over aiokafka: topic creation, an event publisher, and a consumer that dead-letters.

Consumer contract (validate -> handle -> commit ``offset + 1``):

- Every record is decoded as JSON and validated against its topic's event type. A record that is not
  JSON, has an unknown ``schema_version``, misses a field, or whose handler raises a PermanentError or
  an unexpected exception goes to ``<topic>.dlq`` with the error, the original bytes, topic,
  partition and offset; then it is committed and the consumer goes on. A poisoned event never stops
  a consumer.
- A handler that raises RetryableError gets the same record again, after a growing back-off, until
  ``max_retry_s`` has passed; then the record is dead-lettered (``retries_exhausted``) rather than
  stalling its partition for ever.
- Offsets are committed only after their records were handled or dead-lettered. Handlers must be
  idempotent: after a crash or a rebalance, records since the last commit are delivered again.
- A broker restart is ridden out: fetches, DLQ writes and commits are retried until the broker is
  back, and consumption resumes from the committed offset.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from pydantic import ValidationError

from libs.common import metrics
from libs.common.errors import ConfigurationError, EventRejected, PermanentError, RetryableError
from libs.common.events import DeadLetter, Event
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.kafka_shutdown import stop_consumer
from libs.common.logging import get_logger
from libs.common.outages import is_outage
from libs.common.topics import DLQ_CONFIGS, DLQ_PARTITIONS, TopicSpec

log = get_logger(__name__)

E = TypeVar("E", bound=Event)
# A handler takes its topic's event type; a mapping of topics to handlers cannot say which, hence Any.
Handler = Callable[[Any], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# Topics


async def ensure_topics(
    kafka: KafkaAccess, specs: Iterable[TopicSpec[Event]], *, prefix: str = "", replication_factor: int = 1
) -> dict[str, int]:
    """Create every topic and its DLQ if missing; return {name: partitions} as found on the cluster.

    Idempotent. Raises ConfigurationError when an existing topic has another partition count than
    the manifest says: keyed partitioning would silently change, so a person must decide.
    """
    wanted: dict[str, tuple[int, dict[str, str]]] = {}
    for spec in specs:
        wanted[spec.full_name(prefix)] = (spec.partitions, spec.configs)
        wanted[spec.dlq_name(prefix)] = (DLQ_PARTITIONS, DLQ_CONFIGS)

    admin = AIOKafkaAdminClient(**client_kwargs(kafka), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=parts, replication_factor=replication_factor, topic_configs=configs)
            for name, (parts, configs) in wanted.items()
            if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing, timeout_ms=15_000)
            for name, code, *_ in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise ConfigurationError("topic_create_failed", f"creating {name}: error code {code}")
            log.info("topics.created", extra={"topics": [t.name for t in missing]})
        found = await _partition_counts(admin, list(wanted))
    finally:
        await admin.close()

    wrong = {name: (found.get(name), parts) for name, (parts, _) in wanted.items() if found.get(name) != parts}
    if wrong:
        detail = ", ".join(f"{n} has {have} partitions, expected {want}" for n, (have, want) in wrong.items())
        raise ConfigurationError("topic_mismatch", detail)
    return found


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    # A topic just created may take a moment to show all its partitions in metadata.
    for _ in range(50):
        described = await admin.describe_topics(names)
        counts = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
        if len(counts) == len(names):
            return counts
        await asyncio.sleep(0.1)
    return counts


async def check_topics(kafka: KafkaAccess, specs: Iterable[TopicSpec[Event]], *, prefix: str = "") -> None:
    """Raise ConfigurationError unless every topic (and DLQ) exists with its manifest partition count."""
    specs = list(specs)
    names = {s.full_name(prefix): s.partitions for s in specs} | {s.dlq_name(prefix): DLQ_PARTITIONS for s in specs}
    admin = AIOKafkaAdminClient(**client_kwargs(kafka), request_timeout_ms=15_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    found = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    bad = [f"{n} (expected {p}, found {found.get(n, 'none')})" for n, p in names.items() if found.get(n) != p]
    if bad:
        raise ConfigurationError("topic_missing", "topics not as expected: " + ", ".join(bad))


# ---------------------------------------------------------------------------------------------
# Publishing


def make_producer(kafka: KafkaAccess, *, idempotent: bool = True) -> AIOKafkaProducer:
    # Idempotence (acks=all) so a retried send after a broker hiccup is not written twice. Batches of up
    # to 256 KB: with the default 16 KB, a thousand events a second to one partition fill a batch per
    # round trip and every publisher then waits, wakes and retries in turn.
    return AIOKafkaProducer(
        **client_kwargs(kafka),
        enable_idempotence=idempotent,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


class EventPublisher:
    """Publishes events to their topics, keyed as the caller says, waiting for the broker's ack."""

    def __init__(self, producer: AIOKafkaProducer, *, prefix: str = "") -> None:
        self._producer = producer
        self._prefix = prefix

    async def publish(self, spec: TopicSpec[E], event: E, *, key: str) -> None:
        if not isinstance(event, spec.event_type):
            raise TypeError(f"{spec.name} carries {spec.event_type.__name__}, not {type(event).__name__}")
        await self._producer.send_and_wait(
            spec.full_name(self._prefix), value=event.model_dump_json().encode(), key=key.encode()
        )

    async def publish_json(self, spec: TopicSpec[E], value: bytes, *, key: str) -> None:
        """Publish an event its caller serialised itself, for a hot path that skips building the model;
        the caller guarantees it is a valid ``spec.event_type`` (its consumer dead-letters one that is not)."""
        await self._producer.send_and_wait(spec.full_name(self._prefix), value=value, key=key.encode())

    async def enqueue(self, spec: TopicSpec[E], event: E, *, key: str) -> asyncio.Future[Any]:
        """Hand ``event`` to the producer's batch without waiting for the broker; the returned future
        resolves when the broker acknowledged it (or fails), for callers that must answer before then."""
        if not isinstance(event, spec.event_type):
            raise TypeError(f"{spec.name} carries {spec.event_type.__name__}, not {type(event).__name__}")
        future: asyncio.Future[Any] = await self._producer.send(
            spec.full_name(self._prefix), value=event.model_dump_json().encode(), key=key.encode())
        return future

    async def publish_raw(self, topic: str, value: bytes, *, key: bytes | None = None) -> None:
        """Send bytes as they are (dead letters, and tests that inject poison)."""
        await self._producer.send_and_wait(topic, value=value, key=key)

    async def ping(self) -> None:
        """Raise unless the broker answers a metadata request."""
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=3)


# ---------------------------------------------------------------------------------------------
# Consuming


class EventConsumer:
    """Consumes a set of topics in one group and hands each valid event to its topic's handler."""

    def __init__(
        self,
        *,
        kafka: KafkaAccess,
        group_id: str,
        handlers: Mapping[TopicSpec[Event], Handler],
        publisher: EventPublisher,
        prefix: str = "",
        session_timeout_ms: int = 10_000,
        max_retry_s: float = 120.0,
        fetch_max_wait_ms: int = 50,
        group_instance_id: str | None = None,
    ) -> None:
        self._group_id = group_id
        self._publisher = publisher
        self._prefix = prefix
        self._max_retry_s = max_retry_s
        self._routes = {spec.full_name(prefix): (spec, handler) for spec, handler in handlers.items()}
        self._consumer = AIOKafkaConsumer(
            *self._routes,
            **client_kwargs(kafka),
            group_id=group_id,
            group_instance_id=group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=session_timeout_ms // 3,
            fetch_max_wait_ms=fetch_max_wait_ms,
            max_poll_interval_ms=max(300_000, int(max_retry_s * 1000) + 60_000),
        )
        self._stopping = asyncio.Event()
        self._lag = metrics.ConsumerLag(group_id)

    async def start(self) -> None:
        await self._consumer.start()

    def request_stop(self) -> None:
        """``run`` finishes the record in hand, commits what it handled, and returns."""
        self._stopping.set()

    async def stop(self) -> None:
        """Leave the group (after ``run`` returned)."""
        self._stopping.set()
        await stop_consumer(self._consumer)

    async def run(self) -> None:
        """Consume until asked to stop; commits after each partition's batch of handled records."""
        while not self._stopping.is_set():
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            except KafkaError as exc:
                log.warning("consumer.fetch_failed", extra={"group": self._group_id, "error": repr(exc)})
                await asyncio.sleep(1)
                continue
            self._lag.retain(self._consumer)
            for tp, records in batches.items():
                handled = await self._handle(records)
                if handled is not None:
                    await self._commit(tp, handled + 1)
                if self._stopping.is_set():
                    return

    async def _handle(self, records: list[ConsumerRecord]) -> int | None:
        """Handle ``records`` in order; the offset of the last one handled (fewer once asked to stop)."""
        handled = None
        for record in records:
            if self._stopping.is_set():
                break
            try:
                await self._process(record)
            except Exception:
                if not self._stopping.is_set():
                    raise
                break  # it waits on a dependency and we are stopping: not committed, the next owner retries it
            handled = record.offset
        return handled

    async def _process(self, record: ConsumerRecord) -> None:
        spec, handler = self._routes[record.topic]
        await handle_record(record, spec, handler, dead_letter=self._dead_letter, max_retry_s=self._max_retry_s,
                            stopping=self._stopping)

    async def _dead_letter(self, record: ConsumerRecord, code: str, error: str) -> None:
        await dead_letter(self._publisher, record, code, error, group_id=self._group_id, stopping=self._stopping)

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        async def commit() -> None:
            try:
                await self._consumer.commit({tp: next_offset})
                self._lag.observe(self._consumer, tp, next_offset)
            except CommitFailedError:
                # The partition moved to another member during a rebalance: it will redeliver from the
                # last commit, and handlers are idempotent.
                log.warning("consumer.commit_lost", extra={"partition": str(tp), "offset": next_offset})

        try:
            await _retry_until_done(commit, "consumer.commit_failed", self._stopping)
        except KafkaError as exc:  # only while stopping: the next owner redelivers, handlers are idempotent
            log.warning("consumer.commit_abandoned", extra={"partition": str(tp), "error": repr(exc)})


async def dead_letter(publisher: EventPublisher, record: ConsumerRecord, code: str, error: str, *,
                      group_id: str, stopping: asyncio.Event) -> None:
    """Write ``record`` to ``<topic>.dlq`` with its error, retrying until the broker takes it."""
    letter = DeadLetter(
        error_code=code,
        error=error[:4000],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "backslashreplace") if record.key is not None else None,
        value=(record.value or b"").decode("utf-8", "backslashreplace"),
        consumer_group=group_id,
    )
    await _retry_until_done(
        lambda: publisher.publish_raw(record.topic + ".dlq", letter.model_dump_json().encode(), key=record.key),
        "dlq.publish_failed",
        stopping,
    )
    metrics.DLQ_RECORDS.labels(record.topic, code).inc()
    log.warning(
        "event.dead_lettered",
        extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "code": code},
    )


async def handle_record(record: ConsumerRecord, spec: TopicSpec[Event], handler: Handler, *,
                        dead_letter: Callable[[ConsumerRecord, str, str], Awaitable[None]], max_retry_s: float,
                        stopping: asyncio.Event) -> None:
    """Validate one record and hand it to ``handler``: the consumer contract above, for any runtime.

    Returns once the record was handled or dead-lettered (``dead_letter(record, code, error)``), so the
    caller may commit past it. Raises the RetryableError only when ``stopping`` is set: the record must not
    be committed, and the partition's next owner gets it again.
    """
    try:
        event = decode_event(spec, record.value)
    except PermanentError as exc:
        await dead_letter(record, exc.code, str(exc))
        return
    started = asyncio.get_running_loop().time()
    delay = 0.1
    while True:
        try:
            await handler(event)
            return
        except PermanentError as exc:
            await dead_letter(record, exc.code, str(exc))
            return
        except Exception as exc:
            if not isinstance(exc, RetryableError) and not is_outage(exc):
                # A handler bug must not stop the consumer.
                log.exception("event.handler_crashed", extra={"topic": record.topic, "offset": record.offset})
                await dead_letter(record, "handler_crashed", f"{type(exc).__name__}: {exc}")
                return
            if stopping.is_set():
                raise  # not committed: the next owner gets it again
            code = exc.code if isinstance(exc, RetryableError) else "dependency_unavailable"
            # A dependency that is away delays the record, however long it takes; a handler that keeps
            # asking for a retry for other reasons gives up after max_retry_s.
            if isinstance(exc, RetryableError) and not is_outage(exc.__cause__ or exc):
                if asyncio.get_running_loop().time() - started >= max_retry_s:
                    await dead_letter(record, "retries_exhausted", f"{code}: {exc}")
                    return
            log.warning("event.retrying", extra={"topic": record.topic, "offset": record.offset, "code": code})
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 10.0)


def decode_event(spec: TopicSpec[E], value: bytes | None) -> E:
    """Parse and validate one record's value; raise EventRejected (a PermanentError) if it is bad."""
    if value is None:
        raise EventRejected("event_empty", "record has no value")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventRejected("event_not_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventRejected("event_not_object", "event is not a JSON object")
    version = data.get("schema_version")
    try:
        return spec.event_type.model_validate(data)
    except ValidationError as exc:
        if any(e["loc"] == ("schema_version",) for e in exc.errors()):
            supported = f"schema_version {version!r} is not supported by {spec.event_type.__name__}"
            raise EventRejected("schema_version_unsupported", supported) from None
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors()[:10])
        raise EventRejected("schema_invalid", detail) from None


async def _retry_until_done(action: Callable[[], Awaitable[None]], failure_event: str, stopping: asyncio.Event) -> None:
    delay = 0.2
    while True:
        try:
            await action()
            return
        except KafkaError as exc:
            if stopping.is_set():
                raise
            log.warning(failure_event, extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
