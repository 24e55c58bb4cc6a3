"""The drain loop: moves messages through their statuses in time and sends their status callbacks.

Every ``tick_seconds`` it (1) moves service sends from ``accepted`` to ``queued``, (2) takes each message
whose queue slot has come and decides its outcome (``sent`` then ``delivered``/``undelivered`` after
``delivery_delay``, or ``failed`` at once), and (3) runs due timers (delivery receipts, delayed and
retried callbacks). No initial-status callback is sent (docs/twilio.md#message-statuses). One loop, one timer heap: the
cost follows the message rate, not the number of messages waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from libs.common.logging import get_logger
from standins.twilio.callbacks import CallbackDispatcher, CallbackJob
from standins.twilio.formats import raw_dlr_done_date
from standins.twilio.messages import API_VERSION, FINAL_STATUSES, Message
from standins.twilio.outcomes import charge, decide
from standins.twilio.state import TwilioState

log = get_logger(__name__)

# How long after the final callback a reordered message's earlier callbacks go out.
REORDER_GAP = 0.05
# How long after a callback its duplicate goes out.
DUPLICATE_GAP = 0.01


def status_params(message: Message, status: str, now: float) -> tuple[tuple[str, str], ...]:
    """A status callback body, in the order Twilio sends it (docs/twilio.md#status-callbacks)."""
    params = [("SmsSid", message.sid), ("SmsStatus", status), ("MessageStatus", status), ("To", message.to)]
    if message.messaging_service_sid is not None:
        params.append(("MessagingServiceSid", message.messaging_service_sid))
    params += [
        ("MessageSid", message.sid),
        ("AccountSid", message.account_sid),
        ("From", message.from_ or message.sender or ""),
        ("ApiVersion", API_VERSION),
    ]
    if status in {"failed", "undelivered"} and message.error_code is not None:
        params.append(("ErrorCode", str(message.error_code)))
    if status in {"delivered", "undelivered"}:
        params.append(("RawDlrDoneDate", raw_dlr_done_date(now)))
    return tuple(params)


@dataclass(slots=True)
class Lifecycle:
    state: TwilioState
    dispatcher: CallbackDispatcher
    clock: Callable[[], float] = time.time
    _timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _task: asyncio.Task[None] | None = None

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.clock() + delay, next(self._order), action))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="twilio-standin-drain")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def reset(self) -> None:
        self._timers.clear()
        self.dispatcher.reset()

    async def _run(self) -> None:
        interval = self.state.config.tick_seconds
        try:
            while True:
                self.tick(self.clock())
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The stand-in would silently stop delivering; make it visible (and /healthz answers 503).
            log.exception("drain.crashed")
            raise

    def tick(self, now: float) -> None:
        state = self.state
        if state.just_accepted:
            accepted, state.just_accepted = state.just_accepted, []
            for message in accepted:
                self._queued(message, now)
        for message in state.queues.pop_due(now):
            self._depart(message, now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            heapq.heappop(timers)[2]()

    def _queued(self, message: Message, now: float) -> None:
        if message.status != "accepted":
            return
        code = self.state.failing_on_queue.pop(message.sid, None)
        if code is not None:
            self._finish(message, "failed", code, now)
            return
        message.status = "queued"
        message.from_ = message.sender
        message.date_updated = now
        self._callback(message, "queued", now)

    def _depart(self, message: Message, now: float) -> None:
        if message.status in FINAL_STATUSES:
            return
        state = self.state
        number = state.senders.numbers.get(message.sender or "")
        outcome = decide(message, number, state.faults, state.config.tollfree_policy, state.volume, now)
        message.from_ = message.sender
        if outcome.final == "failed":
            self._finish(message, "failed", outcome.error_code, now)
            return
        message.status = "sent"
        message.date_sent = message.left_queue_at
        message.date_updated = now
        message.price = charge(message, state.per_segment, state.failed_fee)
        self._callback(message, "sent", now)
        self.schedule(
            state.config.delivery_delay,
            lambda: self._finish(message, outcome.final, outcome.error_code, self.clock()),
        )

    def _finish(self, message: Message, status: str, error_code: int | None, now: float) -> None:
        if message.status in FINAL_STATUSES:
            return
        message.status = status
        message.error_code = error_code
        message.date_updated = now
        message.price = charge(message, self.state.per_segment, self.state.failed_fee)
        self._callback(message, status, now)

    def _callback(self, message: Message, status: str, now: float) -> None:
        url = message.status_callback
        if not url or not self.state.config.status_callbacks:
            return
        job = CallbackJob(url, status_params(message, status, now), message.sid, status, self.dispatcher.generation)
        delay = 0.0
        if message.reorder_callbacks and status not in FINAL_STATUSES:
            delay = self.state.config.delivery_delay + REORDER_GAP
            self.schedule(delay, lambda: self.dispatcher.submit(job))
        else:
            self.dispatcher.submit(job)
        duplicate = self.state.faults.duplicate
        if duplicate is not None and duplicate.fire():
            twin = CallbackJob(url, job.params, message.sid, status, job.generation, job.idempotency_token,
                               duplicate=True)
            self.schedule(delay + DUPLICATE_GAP, lambda: self.dispatcher.submit(twin))
