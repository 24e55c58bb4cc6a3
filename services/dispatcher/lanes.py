"""A sender lane: the queue of one sender's recipients in this process, sent at its pace.

Many senders share a partition, so each sender gets its own lane and task: a slow or held sender
never holds up another. A lane owns its sender's pacing window; it is seeded from the ledger when
the lane starts, so a sender taken over in a rebalance continues at its pace, with no burst.

A 3 segments/s sender sends one message at a time, in the lane's own task: a round trip is a small part
of its third of a second. A faster one keeps up to ``max_in_flight`` sends going, each a task of its own
(the window counts them, ``pacing.py``):
one at a time, a 150 segments/s sender would need each claim, Twilio call and outcome inside 6.7 ms.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from aiokafka import ConsumerRecord, TopicPartition

from libs.common.events import Recipient
from libs.common.logging import get_logger
from libs.common.outages import is_outage
from services.dispatcher.clock import Clock
from services.dispatcher.delivery import Attempt, Delivered, HoldRecord
from services.dispatcher.pacing import LOOKAHEAD, Choice, SlidingWindow, choose

log = get_logger(__name__)


@dataclass
class Item:
    record: ConsumerRecord
    event: Recipient
    attempt: Attempt = field(default_factory=Attempt)
    not_before: float = 0.0


Deliver = Callable[[Recipient, Attempt, float], Awaitable[Delivered]]  # the float: Twilio call not before
# A message is picked and its ledger row claimed this long before its slot opens.
PREPARE_AHEAD_S = 0.15
# Sends in flight at once per sender, per this many segments/s of its limit (at least one).
SEGMENTS_PER_SECOND_PER_SEND = 10


def max_in_flight(limit: float) -> int:
    """How many sends a lane keeps going at once: 1 up to 19 segments/s, 15 at 150."""
    return max(1, int(limit // SEGMENTS_PER_SECOND_PER_SEND))

Finish = Callable[[Item, Delivered | None, BaseException | None], Awaitable[None]]


class SenderLane:
    def __init__(self, sender: str, tp: TopicPartition, window: SlidingWindow, deliver: Deliver,
                 finish: Finish, *, clock: Clock) -> None:
        self.sender = sender
        self._clock = clock
        self.tp = tp
        self._window = window
        self._deliver = deliver
        self._finish = finish
        self._pending: list[Item] = []
        self._wakeup = asyncio.Event()
        self._hold_until = 0.0
        self._held_until = 0.0  # the latest not_before given to any item
        self._head: Item | None = None
        self._head_since = 0.0
        self._busy = asyncio.Lock()
        self._sending: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._backoff = 1.0
        self._paused_runs: set[UUID] = set()  # held because paused: logged once each, until it sends again

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> bool:
        """A send is in flight (from its ledger claim to its recorded outcome)."""
        return self._busy.locked()

    @property
    def window(self) -> SlidingWindow:
        """The sender's pacing window; one-off texts of the sender are paced in it too (one_off.py)."""
        return self._window

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lane-{self.sender}")

    def add(self, item: Item) -> None:
        self._pending.append(item)
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop starting sends, let those in flight finish (their outcomes are recorded); queued items are dropped."""
        if self._task is None:
            return
        # The lock waits out a send the loop itself is making. The flag as well as the cancel:
        # asyncio.wait_for (under Clock.wait) drops a cancel that lands as its event is set.
        async with self._busy:
            self._stopping = True
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        self._pending.clear()

    async def abort(self) -> None:
        """Stop now, even mid-send: like a crash, the next owner reconciles a claim left without outcome."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pending.clear()

    async def _run(self) -> None:
        while not self._stopping:
            now = self._clock.time()
            # Only a paused run's records are held back; until the last hold ends, none are filtered out.
            eligible = self._pending if now >= self._held_until else [i for i in self._pending if i.not_before <= now]
            if not eligible:
                self._wakeup.clear()
                wait = min((i.not_before for i in self._pending), default=now + 3600) - now
                await self._clock.wait(self._wakeup, max(wait, 0.001))
                continue
            if now < self._hold_until:
                await self._clock.sleep(self._hold_until - now)
                continue
            if len(self._sending) >= max_in_flight(self._window.limit):
                await self._until_woken(1.0)  # a send ending wakes the lane
                continue
            if eligible[0] is not self._head:  # how long the oldest has been passed over, not queued
                self._head, self._head_since = eligible[0], now
            sizes = [i.event.segments for i in eligible[:LOOKAHEAD]]
            choice = self._choose(sizes, now)
            start_at = now
            if choice.index is None:
                start_at = self._window.earliest_start(now, choice.wait_for)
                if start_at == math.inf:  # room frees only once a send in flight ends
                    await self._until_woken(1.0)
                    continue
                if start_at - now > PREPARE_AHEAD_S:
                    await self._clock.sleep(start_at - now - PREPARE_AHEAD_S)
                    continue
                # The slot is near: pick for it now, so the ledger work is done before the slot opens and
                # only the Twilio call stands between the slot and the message's acceptance.
                choice = self._choose(sizes, start_at)
                if choice.index is None:
                    await self._clock.sleep(max(start_at - now, 0.001))
                    continue
            item = eligible[choice.index]
            self._pending.remove(item)
            if max_in_flight(self._window.limit) == 1 and not self._sending:
                async with self._busy:  # one at a time: no task of its own, and no wake-up to wait for
                    self._window.start(item.event.segments)  # counted in the window from now until it ends
                    await self._attempt(item, start_at)
                continue
            self._window.start(item.event.segments)
            sending = asyncio.create_task(self._attempt(item, start_at))
            self._sending.add(sending)
            sending.add_done_callback(self._sent)

    def _sent(self, sending: asyncio.Task[None]) -> None:
        self._sending.discard(sending)
        self._wakeup.set()

    async def _until_woken(self, timeout: float) -> None:
        self._wakeup.clear()
        await self._clock.wait(self._wakeup, timeout)

    def _note_paused(self, run_id: UUID) -> None:
        """The lane holds ``run_id`` from now on: its sends so far are done and every next one reads the run
        first."""
        if run_id not in self._paused_runs:
            self._paused_runs.add(run_id)
            log.info("lane.run_paused", extra={"sender": self.sender, "run_id": str(run_id)})

    def _back_off(self) -> None:
        delay = min(self._backoff * random.uniform(0.5, 1.5), 30.0)
        self._backoff = min(self._backoff * 2, 30.0)
        self._hold_until = self._clock.time() + delay

    def _choose(self, sizes: list[int], at: float) -> Choice:
        return choose(sizes, self._window.room(at), empty=self._window.is_empty(at),
                      window_holds_a_two=self._window.holds(at, 2), head_waited_s=at - self._head_since)

    async def _attempt(self, item: Item, start_at: float) -> None:
        try:
            await self._attempt_paced(item, start_at)
        finally:
            self._window.release(item.event.segments)

    async def _attempt_paced(self, item: Item, start_at: float) -> None:
        try:
            delivered = await self._deliver(item.event, item.attempt, start_at)
        except HoldRecord as hold:
            if hold.segments_used:
                self._window.record(hold.anchor, hold.segments_used)
            delay = hold.delay_s * random.uniform(0.8, 1.2)
            if hold.code == "run_paused":
                item.not_before = self._clock.time() + delay
                self._note_paused(item.event.run_id)
                self._held_until = max(self._held_until, item.not_before)
            elif hold.code == "cap_reached":  # the sender waits for its next period (re-checked each minute)
                self._hold_until = self._clock.time() + hold.delay_s
            else:  # Twilio is busy or unreachable for this sender: back off the whole lane, growing
                self._back_off()
            self._pending.insert(0, item)
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to finish, which dead-letters it
            if isinstance(exc, Exception) and is_outage(exc):
                # PostgreSQL went away before the ledger entry (the run's state, the account): nothing was
                # claimed, so the record waits with the lane and is tried again; never dead-lettered.
                log.warning("lane.stalled", extra={"sender": self.sender, "error": repr(exc)[:300]})
                self._back_off()
                self._pending.insert(0, item)
                return
            await self._finish(item, None, exc)
            return
        self._backoff = 1.0
        self._paused_runs.discard(item.event.run_id)
        if delivered.segments_used:
            self._window.record(delivered.anchor, delivered.segments_used)
        await self._finish(item, delivered, None)
