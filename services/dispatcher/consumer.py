"""The dispatcher's Kafka side: recipients in, one lane per sender, offsets committed behind the work.

Each fetched batch is first checked against the runs' frozen snapshots (one statement for the batch,
``snapshot.py`` has the rule): a record the database does not vouch for is dead-lettered before it
reaches a lane, so it is never claimed or sent and touches no run.

Offsets of a partition are committed only up to its lowest unfinished record, so a crash redelivers
exactly what may not be done (the ledger makes the redelivery harmless). Read-ahead is bounded: past
``max_buffered`` records in lanes, fetching pauses. On a rebalance, lanes of revoked partitions finish
their send in flight and stop before the partitions are handed over, and no record fetched before the
revocation reaches a lane after it: two processes never pace one sender at once.

Asked to stop (SIGTERM, ``request_stop``), the consumer fetches nothing more, lets every lane finish its
send in flight, waits for the results' acks, commits, and returns from ``run``; ``stop`` then leaves the
group, so the partitions move at once. ``stop`` without that drain (the drain time ran out) stops the
lanes mid-send, as a crash would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from libs.common import metrics
from libs.common.errors import EventRejected, PermanentError
from libs.common.events import Recipient, SendResult
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
# The database's word on an event: why it is refused, the result an earlier attempt ended it with (published
# again, nothing sent), or None: send it.
Verdict = PermanentError | SendResult | None
# The verdict on each event, in the events' order.
CheckEvents = Callable[[Sequence[Recipient]], Awaitable[list[Verdict]]]


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
                 group_instance_id: str | None = None, max_buffered: int = 20_000) -> None:
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
        # What this process may hand to lanes: from an assignment until the start of its revocation. Each
        # revocation also starts a new epoch, so records fetched before it are not handed to lanes after it
        # (aiokafka reports the old assignment until the new one arrives).
        self._owned: set[TopicPartition] = set()
        self._epoch = 0
        self._stopping = asyncio.Event()
        self._lag = metrics.ConsumerLag(group_id)
        self._consumer = AIOKafkaConsumer(
            **client_kwargs(kafka), group_id=group_id, group_instance_id=group_instance_id, enable_auto_commit=False,
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

    def request_stop(self) -> None:
        """Fetch nothing more; ``run`` drains what it holds and returns."""
        self._stopping.set()

    async def stop(self) -> None:
        """Leave the group; lanes still running (``run`` did not drain) are stopped mid-send."""
        self._stopping.set()
        log.info("snapshot.check_totals", extra={"events": self.checked, "seconds": round(self.check_seconds, 3)})
        lanes, self._lanes = list(self._lanes.values()), {}
        await asyncio.gather(*(lane.abort() for lane in lanes))
        for task in list(self._publishing):
            task.cancel()
        await self._consumer.stop()

    async def run(self) -> None:
        committer = asyncio.create_task(self._commit_every(0.5))
        try:
            while not self._stopping.is_set():
                if committer.done():  # a committer that died would leave offsets and runs behind for good
                    committer.result()
                    raise RuntimeError("the offset committer stopped")
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
        await self._drain()

    async def _drain(self) -> None:
        started = time.monotonic()
        in_flight = sum(1 for lane in self._lanes.values() if lane.busy)
        await self._stop_lanes(list(self._lanes.values()))
        await self._settle_publishing()
        await self._commit(list(self._offsets))
        log.info("consumer.drained", extra={"sends_in_flight": in_flight, "results_unacked": len(self._publishing),
                                            "ms": int((time.monotonic() - started) * 1000)})

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
        epoch = self._epoch
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
        answers = iter(verdicts)
        for tp, record, event in fetched:
            refused = event if isinstance(event, EventRejected) else next(answers)
            if not self._owns(tp, epoch):
                continue  # revoked since it was fetched: the partition's owner reads the record again
            offsets = self._offsets.setdefault(tp, PartitionOffsets())
            offsets.take(record.offset)
            if isinstance(refused, SendResult):  # ended by an earlier attempt: its result again, nothing sent
                self._touched_runs.add(refused.run_id)
                self._publish_later(Delivered(refused), record)
            elif refused is not None and refused.code == ERASED:
                # Not poison: the erasure ended the recipient in the ledger itself; the run's counts take it in.
                assert isinstance(event, Recipient)
                self._touched_runs.add(event.run_id)
                offsets.finish(record.offset)
            elif refused is not None:
                await self._dead_letter(record, refused.code, str(refused))
                offsets.finish(record.offset)
            else:
                assert isinstance(event, Recipient)
                await self._accept(tp, record, event, epoch)

    async def _check(self, events: list[Recipient]) -> list[Verdict] | None:
        """The snapshot's verdict on each event. While PostgreSQL is unavailable the check waits and asks
        again (None if the consumer stops meanwhile); any other failure is a bug and stops the consumer."""
        started = time.perf_counter()
        verdicts = await until_available(lambda: self._check_events(events), stalled="snapshot.check_failed",
                                         stopping=self._stopping)
        if verdicts is not None:
            self.checked += len(events)
            self.check_seconds += time.perf_counter() - started
        return verdicts

    def _owns(self, tp: TopicPartition, epoch: int) -> bool:
        return epoch == self._epoch and tp in self._owned

    async def _accept(self, tp: TopicPartition, record: ConsumerRecord, event: Recipient, epoch: int) -> None:
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
            if window is None or not self._owns(tp, epoch):
                return  # stopping, or revoked meanwhile: the record is not finished, so it is read again
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
            self._publish_later(delivered, record)
        else:
            self._finish_offset(record)

    def _publish_later(self, delivered: Delivered, record: ConsumerRecord) -> None:
        # The lane goes on to its next recipient while the result is acknowledged; the offset is
        # finished only after the ack, so a crash in between redelivers it and the result is sent again.
        task = asyncio.create_task(self._publish_then_finish(delivered, record))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

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
            self._observe()

    def _observe(self) -> None:
        metrics.LANE_QUEUE_DEPTH.set(self.buffered)
        metrics.LANES.set(len(self._lanes))
        self._lag.retain(self._consumer)
        for tp, tracker in self._offsets.items():
            self._lag.observe(self._consumer, tp, tracker.committed)

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
            tracker = self._offsets.get(tp)
            if tracker is not None:  # a revocation during the commit drops the partition's tracker
                tracker.committed = offset

    async def _settle_publishing(self) -> None:
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=30)

    async def _stop_lanes(self, lanes: list[SenderLane]) -> None:
        await asyncio.gather(*(lane.stop() for lane in lanes))
        for lane in lanes:
            if self._lanes.get(lane.sender) is lane:
                del self._lanes[lane.sender]

    def assign(self, assigned: set[TopicPartition]) -> None:
        self._owned = set(assigned)
        log.info("partitions.assigned", extra={"count": len(assigned)})

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        started = time.monotonic()
        self._epoch += 1
        self._owned -= revoked  # before any await: no lane of these partitions starts after this line
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
        self._owner.assign(set(assigned))
