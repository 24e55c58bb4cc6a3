"""Per-sender queues that drain at a rate counted in segments per second. Pure: ``now`` is passed.

The rate: docs/twilio.md#toll-free-senders.

Each sender keeps a virtual schedule. A message's slot starts when the previous one's ends (or when it
arrives, if the queue is idle) and lasts ``segments / rate`` seconds, so a 3-segment text on a 3
segments/s toll-free number takes a whole second. ``left_queue_at`` is the slot's start, exactly; the
drain loop only has to pop messages whose slot has come (``pop_due``), so there is no task per message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from standins.twilio.messages import Message


class QueueTooLong(Exception):
    """The message would wait longer than its validity period (Twilio: 21611 direct, 30001 with a service)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"queue wait {wait:.1f}s exceeds the validity period")
        self.wait = wait


@dataclass(slots=True)
class SenderQueue:
    sender: str
    rate: float
    free_at: float = 0.0  # end of the slot of the last message that left
    tail: float = 0.0  # end of the slot of the last message waiting
    pending: deque[Message] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        return max(0.0, self.tail - now) if self.pending else max(0.0, self.free_at - now)


@dataclass(slots=True)
class SenderQueues:
    queues: dict[str, SenderQueue] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def _queue(self, sender: str, rate: float) -> SenderQueue:
        queue = self.queues.get(sender)
        if queue is None:
            queue = self.queues[sender] = SenderQueue(sender, rate)
        return queue

    def enqueue(self, message: Message, sender: str, rate: float, now: float, max_wait: float | None) -> float:
        """Give ``message`` the next slot on ``sender``; returns its departure time.

        Raises QueueTooLong (and queues nothing) when the slot would start more than ``max_wait`` s from now.
        """
        queue = self._queue(sender, rate)
        start = max(now, queue.tail if queue.pending else queue.free_at)
        if max_wait is not None and start - now > max_wait:
            raise QueueTooLong(start - now)
        message.left_queue_at = start
        queue.tail = start + message.num_segments / queue.rate
        queue.pending.append(message)
        self.active.add(sender)
        return start

    def pop_due(self, now: float) -> list[Message]:
        """Messages whose slot has started, in slot order per sender."""
        due: list[Message] = []
        for sender in list(self.active):
            queue = self.queues[sender]
            pending = queue.pending
            while pending and pending[0].left_queue_at <= now:  # type: ignore[operator]
                message = pending.popleft()
                queue.free_at = message.left_queue_at + message.num_segments / queue.rate  # type: ignore[operator]
                due.append(message)
            if not pending:
                self.active.discard(sender)
        return due

    def set_rate(self, sender: str, rate: float, now: float) -> None:
        """Change a sender's rate; messages still waiting get new slots at the new rate."""
        queue = self._queue(sender, rate)
        queue.rate = rate
        start = max(now, queue.free_at)
        for message in queue.pending:
            message.left_queue_at = start
            start += message.num_segments / rate
        queue.tail = start

    def depth(self, sender: str, now: float) -> dict[str, float]:
        queue = self.queues.get(sender)
        if queue is None:
            return {"messages": 0, "segments": 0, "wait_seconds": 0.0}
        return {
            "messages": len(queue.pending),
            "segments": sum(m.num_segments for m in queue.pending),
            "wait_seconds": round(queue.wait(now), 3),
        }

    def remove(self, message: Message) -> None:
        """Take a waiting message out (it failed before its slot); later slots keep their times."""
        if message.sender is not None and message.sender in self.queues:
            try:
                self.queues[message.sender].pending.remove(message)
            except ValueError:
                pass

    def clear(self) -> None:
        self.queues.clear()
        self.active.clear()
