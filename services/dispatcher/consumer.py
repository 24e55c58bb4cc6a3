"""The dispatcher's Kafka side: recipients in, one lane per sender, offsets committed behind the work.

Each fetched batch is first checked against the runs' frozen snapshots (one statement for the batch,
``snapshot.py`` has the rule): a record the database does not vouch for is dead-lettered before it
reaches a lane, so it is never claimed or sent and touches no run.

Offsets of a partition are committed only up to its lowest unfinished record, so a crash redelivers
exactly what may not be done (the ledger makes the redelivery harmless). Read-ahead is bounded: past
``max_buffered`` records in lanes, fetching pauses. On a rebalance, lanes of revoked partitions finish
their send in flight and stop before the partitions are handed over.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from libs.common.errors import EventRejected, PermanentError
from libs.common.events import Recipient
from libs.common.kafka import EventPublisher, dead_letter, decode_event
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.logging import get_logger
from libs.common.outages import is_outage
from libs.common.polling import until_available
from libs.common.topics import RECIPIENTS, SEND_RESULTS
from services.dispatcher.clock import Clock
from services.dispatcher.delivery import Attempt, Delivered
from services.dispatcher.lanes import Item, SenderLane
from services.dispatcher.pacing import SlidingWindow
from services.dispatcher.snapshot import ERASED

log = get_logger(__name__)

DeliverFor = Callable[[Recipient, Attempt, float], Awaitable[Delivered]]
SenderSetup = Callable[[Recipient], Awaitable[SlidingWindow]]
RefreshRun = Callable[[uuid.UUID], Awaitable[None]]
# For each event, why the database does not vouch for it (None: it does), in the events' order.
CheckEvents = Callable[[Sequence[Recipient]], Awaitable[list[PermanentError | None]]]


class PartitionOffsets:
    """Which offsets of one partition are taken but not finished."""

    def __init__(self) -> None:
        self.unfinished: set[int] = set()
        self.next_offset: int | None = None  # one past the highest offset seen
        self.committed: int | None = None

    def take(self, offset: int) -> None:
        self.unfinished.add(offset)
        self.next_offset = max(self.next_offset or 0, offset + 1)

    def finish(self, offset: int) -> None:
        self.unfinished.discard(offset)

    def committable(self) -> int | None:
        if self.unfinished:
            return min(self.unfinished)
        return self.next_offset


class DispatchConsumer:
    def __init__(self, *, kafka: KafkaAccess, group_id: str, prefix: str, publisher: EventPublisher,
                 deliver: DeliverFor, setup_sender: SenderSetup, refresh_run: RefreshRun,
                 check_events: CheckEvents, clock: Clock, session_timeout_ms: int = 10_000,
                 max_buffered: int = 20_000) -> None:
        self._publisher = publisher
        self._clock = clock
        self._deliver = deliver
        self._setup_sender = setup_sender
        self._refresh_run = refresh_run
        self._check_events = check_events
        self.checked = 0  # events checked against the snapshot, and the seconds it took (for the logs)
        self.check_seconds = 0.0
        self._touched_runs: set[uuid.UUID] = set()
        self._publishing: set[asyncio.Task[None]] = set()
        self._group_id = group_id
        self._topic = RECIPIENTS.full_name(prefix)
        self._max_buffered = max_buffered
        self._lanes: dict[str, SenderLane] = {}
        self._offsets: dict[TopicPartition, PartitionOffsets] = {}
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            **client_kwargs(kafka), group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=session_timeout_ms // 3, fetch_max_wait_ms=50,
            max_poll_interval_ms=600_000,
        )

    @property
    def buffered(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def window_for(self, sender: str) -> SlidingWindow | None:
        """The pacing window of the sender's lane in this process, if it has one."""
        lane = self._lanes.get(sender)
        return lane.window if lane is not None else None

    async def start(self) -> None:
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))
        await self._consumer.start()

    async def stop(self) -> None:
        self._stopping.set()
        log.info("snapshot.check_totals", extra={"events": self.checked, "seconds": round(self.check_seconds, 3)})
        await self._stop_lanes(list(self._lanes.values()))
        await self._settle_publishing()
        await self._commit(list(self._offsets))
        await self._consumer.stop()

    async def run(self) -> None:
        committer = asyncio.create_task(self._commit_every(0.5))
        try:
            while not self._stopping.is_set():
                await self._apply_backpressure()
                try:
                    batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
                except KafkaError as exc:
                    log.warning("consumer.fetch_failed", extra={"error": repr(exc)})
                    await self._clock.sleep(1)
                    continue
                await self._accept_batches(batches)
        finally:
            committer.cancel()
            await asyncio.gather(committer, return_exceptions=True)

    async def _apply_backpressure(self) -> None:
        assigned = self._consumer.assignment()
        if self.buffered >= self._max_buffered:
            self._consumer.pause(*assigned)
            while self.buffered >= self._max_buffered * 0.8 and not self._stopping.is_set():
                await self._clock.sleep(0.05)
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)

    async def _accept_batches(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Decode every record fetched, check them all against the snapshot at once, then hand them on."""
        fetched: list[tuple[TopicPartition, ConsumerRecord, Recipient | EventRejected]] = []
        for tp, records in batches.items():
            for record in records:
                try:
                    fetched.append((tp, record, decode_event(RECIPIENTS, record.value)))
                except EventRejected as exc:
                    fetched.append((tp, record, exc))
        events = [e for _, _, e in fetched if isinstance(e, Recipient)]
        verdicts = await self._check(events) if events else []
        if verdicts is None:
            return  # stopping: nothing was taken, so these records are read again
        mismatches = iter(verdicts)
        assigned = self._consumer.assignment()
        for tp, record, event in fetched:
            refused = event if isinstance(event, EventRejected) else next(mismatches)
            if tp not in assigned:
                continue  # revoked while the check waited: the partition's new owner reads the record
            offsets = self._offsets.setdefault(tp, PartitionOffsets())
            offsets.take(record.offset)
            if refused is not None and refused.code == ERASED:
                # Not poison: the erasure ended the recipient in the ledger itself; the run's counts take it in.
                assert isinstance(event, Recipient)
                self._touched_runs.add(event.run_id)
                offsets.finish(record.offset)
            elif refused is not None:
                await self._dead_letter(record, refused.code, str(refused))
                offsets.finish(record.offset)
            else:
                assert isinstance(event, Recipient)
                await self._accept(tp, record, event)

    async def _check(self, events: list[Recipient]) -> list[PermanentError | None] | None:
        """The snapshot's verdict on each event. While PostgreSQL is unavailable the check waits and asks
        again (None if the consumer stops meanwhile); any other failure is a bug and stops the consumer."""
        started = time.perf_counter()
        verdicts = await until_available(lambda: self._check_events(events), stalled="snapshot.check_failed",
                                         stopping=self._stopping)
        if verdicts is not None:
            self.checked += len(events)
            self.check_seconds += time.perf_counter() - started
        return verdicts

    async def _accept(self, tp: TopicPartition, record: ConsumerRecord, event: Recipient) -> None:
        offsets = self._offsets[tp]
        lane = self._lanes.get(event.sender)
        if lane is None or lane.tp != tp:
            try:  # the sender's account and rate come from PostgreSQL: an outage is waited out here
                window = await until_available(lambda: self._setup_sender(event), stalled="sender.setup_failed",
                                               stopping=self._stopping)
            except PermanentError as exc:
                await self._dead_letter(record, exc.code, str(exc))
                offsets.finish(record.offset)
                return
            if window is None:
                return  # stopping: the record is not finished, so it is read again
            lane = SenderLane(event.sender, tp, window, self._deliver, self._finish, clock=self._clock)
            self._lanes[event.sender] = lane
            lane.start()
        lane.add(Item(record, event))

    async def _finish(self, item: Item, delivered: Delivered | None, error: BaseException | None) -> None:
        record = item.record
        if error is not None:
            code = error.code if isinstance(error, PermanentError) else "handler_crashed"
            log.error("recipient.failed", extra={"offset": record.offset, "error": repr(error)})
            await self._dead_letter(record, code, f"{type(error).__name__}: {error}")
            self._finish_offset(record)
        elif delivered is not None and delivered.result is not None:
            self._touched_runs.add(item.event.run_id)
            # The lane goes on to its next recipient while the result is acknowledged; the offset is
            # finished only after the ack, so a crash in between redelivers it and the result is sent again.
            task = asyncio.create_task(self._publish_then_finish(delivered, record))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        else:
            self._finish_offset(record)

    async def _publish_then_finish(self, delivered: Delivered, record: ConsumerRecord) -> None:
        await self._publish_result(delivered)
        self._finish_offset(record)

    def _finish_offset(self, record: ConsumerRecord) -> None:
        tp = TopicPartition(record.topic, record.partition)
        if tp in self._offsets:
            self._offsets[tp].finish(record.offset)

    async def _publish_result(self, delivered: Delivered) -> None:
        result = delivered.result
        assert result is not None
        while True:
            try:
                await self._publisher.publish(SEND_RESULTS, result, key=str(result.run_id))
                return
            except KafkaError as exc:
                log.warning("send_result.publish_failed", extra={"error": repr(exc)})
                await self._clock.sleep(1)

    async def _dead_letter(self, record: ConsumerRecord, code: str, error: str) -> None:
        await dead_letter(self._publisher, record, code, error, group_id=self._group_id, stopping=self._stopping)

    async def _commit_every(self, interval: float) -> None:
        while True:
            await self._clock.sleep(interval)
            await self._commit(list(self._offsets))

    async def _commit(self, partitions: list[TopicPartition]) -> None:
        # Runs are refreshed before offsets move: a committed record's outcome is always in its run's counts.
        touched, self._touched_runs = self._touched_runs, set()
        for run_id in touched:
            try:
                await self._refresh_run(run_id)
            except Exception as exc:  # offsets wait for the next commit, which refreshes the runs again
                self._touched_runs |= touched
                if is_outage(exc):
                    log.warning("run.refresh_failed", extra={"run_id": str(run_id), "error": repr(exc)[:300]})
                else:
                    log.exception("run.refresh_failed", extra={"run_id": str(run_id)})
                return
        assigned = self._consumer.assignment()
        offsets = {}
        for tp in partitions:
            tracker = self._offsets.get(tp)
            target = tracker.committable() if tracker else None
            if tracker and target is not None and target != tracker.committed and tp in assigned:
                offsets[tp] = target
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            log.warning("consumer.commit_lost", extra={"partitions": [str(tp) for tp in offsets]})
            return
        except KafkaError as exc:
            log.warning("consumer.commit_failed", extra={"error": repr(exc)})
            return
        for tp, offset in offsets.items():
            self._offsets[tp].committed = offset

    async def _settle_publishing(self) -> None:
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=30)

    async def _stop_lanes(self, lanes: list[SenderLane]) -> None:
        await asyncio.gather(*(lane.stop() for lane in lanes))
        for lane in lanes:
            if self._lanes.get(lane.sender) is lane:
                del self._lanes[lane.sender]

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        started = time.monotonic()
        await self._stop_lanes([lane for lane in self._lanes.values() if lane.tp in revoked])
        await self._settle_publishing()
        await self._commit(list(revoked))
        for tp in revoked:
            self._offsets.pop(tp, None)
        log.info("partitions.revoked", extra={"count": len(revoked), "ms": int((time.monotonic() - started) * 1000)})


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped: its classes are Any
    def __init__(self, owner: DispatchConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions.assigned", extra={"count": len(assigned)})
