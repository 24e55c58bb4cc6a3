"""Delivering one recipient exactly once. The ledger row, not the Kafka offset, says what was sent.

For each recipient event (redelivery is normal):

1. The run is checked first: paused -> hold the record; cancelled or finished -> drop it.
2. A ``claimed`` ledger row is committed **before** the Twilio call, and the entry is locked for the call
   (one round trip; the outcome and the unlock are another). A second process with the same recipient (a
   rebalance overlap) waits on the lock and then sees the outcome; a killed process's lock dies with its
   connection.
3. A row that is already final is skipped (its send-result is published again, harmlessly).
4. A row claimed by an earlier attempt that left no outcome (a crash, a timeout, a 5xx) is reconciled
   first: Twilio's list of messages from the sender to the number is searched for one with this body
   created since the claim; if found, its SID is adopted and nothing is sent. While Twilio cannot be
   listed, nothing is sent.
5. Suppression is checked again, then quiet hours and frequency caps (``send_rules.py``): a recipient whose
   local window is closed is held in the ledger (``holds.py`` publishes it again when it opens; a held
   entry that comes back is claimed without reconciling, as nothing was sent for it), one whose window
   does not open in time ends ``outside_window``, one over a cap ``frequency_capped``.
6. The message is sent and its outcome written. The run's counts are
   recomputed from the ledger before the record's offset is committed (``consumer.py``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from libs.common import metrics, run_reasons
from libs.common.db import Connection
from libs.common.errors import RetryableError
from libs.common.events import Recipient, SendOutcome, SendResult
from libs.common.logging import get_logger, mask_phone
from libs.common.outages import POSTGRES_RETRYABLE
from libs.common.sender_caps import CapPolicy, is_capped, next_period_start
from libs.common.twilio_errors import SendFailure
from libs.common.twilio_sender import MessageSender
from services.dispatcher.clock import Clock
from services.dispatcher.db import LedgerEntry
from services.dispatcher.ledger_writer import LedgerUnavailable
from services.dispatcher.ports import Gate, LedgerStore
from services.dispatcher.results import earlier_result, send_result

log = get_logger(__name__)

SENDABLE_RUN_STATES = frozenset({"pending", "resolving", "sending"})


@dataclass
class Attempt:
    """What one process knows about its attempts at one record, kept across retries of it."""

    token: uuid.UUID = field(default_factory=uuid.uuid4)
    must_reconcile: bool = False


@dataclass(frozen=True)
class Delivered:
    """The record is done. ``segments_used`` is what may have reached Twilio's queue at ``anchor``."""

    result: SendResult | None
    segments_used: int = 0
    anchor: float = 0.0


class HoldRecord(RetryableError):
    """The record must wait (run paused, Twilio busy or unreachable); ``segments_used`` as above."""

    def __init__(self, code: str, message: str, *, delay_s: float, segments_used: int = 0, anchor: float = 0.0):
        super().__init__(code, message)
        self.delay_s = delay_s
        self.segments_used = segments_used
        self.anchor = anchor


# The ledger could not be read or written: the record is held and retried, never dead-lettered.
_LEDGER_OUTAGES: Final[tuple[type[BaseException], ...]] = (LedgerUnavailable, *POSTGRES_RETRYABLE)


class Deliverer:
    def __init__(self, store: LedgerStore, *, process_id: str, clock: Clock, failure_threshold: float = 0.05,
                 failure_window: int = 200, gate: Gate | None = None) -> None:
        self._store = store
        self._gate = gate
        self._clock = clock
        self._process_id = process_id
        self._failure_threshold = failure_threshold
        self._failure_window = failure_window

    async def deliver(self, event: Recipient, attempt: Attempt, twilio: MessageSender,
                      sender_verification: str = "verified", *, not_before: float = 0.0) -> Delivered:
        """Deliver ``event`` once; the Twilio call starts no earlier than ``not_before`` (the pacing slot)."""
        policy = None
        if is_capped(sender_verification, event.to):
            policy = await self._store.cap_policy(event.org_id, sender_verification)
            if policy is None:
                # Twilio blocks unverified toll-free numbers to US/Canada (30032) and still charges: refuse
                # the run, unless the organisation chose volume caps for this state instead.
                await self._store.refuse_run(event.run_id, run_reasons.sender_unverified(event.sender,
                                                                                         sender_verification))
                log.error("run.refused", extra={"run_id": str(event.run_id), "sender": event.sender,
                                                "verification": sender_verification})
        run_state = await self._store.run_state(event.run_id)
        if run_state == "paused":
            raise HoldRecord("run_paused", "the run is paused", delay_s=1.0)
        try:
            return await self._deliver_entry(event, attempt, twilio, run_state, policy, not_before)
        except _LEDGER_OUTAGES as exc:
            # A claim or an outcome may or may not be written: hold the record and reconcile before any send.
            attempt.must_reconcile = True
            code = exc.code if isinstance(exc, LedgerUnavailable) else "ledger_unavailable"
            log.warning("ledger.unavailable", extra={"run_id": str(event.run_id), "error": repr(exc)})
            raise HoldRecord(code, str(exc), delay_s=1.0, segments_used=event.segments,
                             anchor=self._clock.time()) from None

    async def _deliver_entry(self, event: Recipient, attempt: Attempt, twilio: MessageSender, run_state: str | None,
                             policy: CapPolicy | None, not_before: float) -> Delivered:
        # A capped sender's reservation shares a transaction with the outcome: its entry needs a connection.
        claiming = time.perf_counter()
        async with self._store.entry(event, attempt.token, self._process_id,
                                     own_connection=policy is not None) as entry:
            metrics.LEDGER_CLAIM_SECONDS.observe(time.perf_counter() - claiming)
            if entry.state == "held":
                await self._store.take_held(entry, attempt.token, self._process_id)
            if entry.state != "claimed":
                return Delivered(earlier_result(event, entry.state, entry.message_sid, entry.segments,
                                                entry.error_code))
            if run_state not in SENDABLE_RUN_STATES:
                return await self._finish(entry, "cancelled", None)
            if entry.claim_token != attempt.token or attempt.must_reconcile:
                found = await self._reconcile(event, entry.claimed_at, twilio)
                if found is not None:
                    return await self._record_sent(entry, found, event.segments, None, "adopted")
                if entry.claim_token != attempt.token:  # an earlier holder's claim becomes this attempt's
                    await self._store.reclaim(entry, attempt.token, self._process_id)
                attempt.must_reconcile = False
                # Asking Twilio took a while: a STOP may have been committed meanwhile.
                entry.suppressed = await self._store.is_suppressed(event)
            if entry.suppressed:
                return await self._finish(entry, "suppressed", None)
            if self._gate is not None and (ruled := await self._apply_rules(entry)) is not None:
                return ruled
            if policy is None:
                return await self._send(entry, attempt, twilio, not_before)
            # The reservation commits with the outcome, and is undone if the record is held back.
            conn = entry.conn
            assert conn is not None  # own_connection: the entry holds its lock on a connection of its own
            async with conn.transaction():
                capped = await self._reserve_volume(conn, entry, policy)
                return capped or await self._send(entry, attempt, twilio, not_before)

    async def _apply_rules(self, entry: LedgerEntry) -> Delivered | None:
        """Hold or end the entry if quiet hours or a frequency cap say so; None: it may be sent now."""
        assert self._gate is not None
        event = entry.event
        verdict = await self._gate.verdict(event, entry.claimed_at, self._clock.time())
        if verdict.kind == "send":
            return None
        fields = {"run_id": str(event.run_id), "to": mask_phone(event.to), "verdict": verdict.kind}
        if verdict.kind == "hold":
            assert verdict.until is not None
            await self._store.hold(entry, verdict.until)
            log.info("recipient.held", extra=fields | {"until": verdict.until.isoformat()})
            return Delivered(None)
        log.info("recipient.not_sent", extra=fields | {"reason": verdict.reason})
        return await self._finish(entry, verdict.kind, None, reason=verdict.reason)

    async def _reserve_volume(self, conn: Connection, entry: LedgerEntry, policy: CapPolicy) -> Delivered | None:
        """Reserve the message's segments under the sender's caps; what to do when a cap is reached."""
        event, now = entry.event, datetime.fromtimestamp(self._clock.time(), UTC)
        reached = await self._store.reserve_volume(conn, event.sender, event.segments, policy.limits(), now)
        if reached is None:
            return None
        log.warning("sender.cap_reached", extra={"sender": event.sender, "period": reached,
                                                 "when_reached": policy.when_reached})
        if policy.when_reached == "fail":
            return await self._finish(entry, "failed", None, reason=f"cap_reached: {event.sender}'s {reached} cap")
        opens_in = (next_period_start(reached, now) - now).total_seconds()
        raise HoldRecord("cap_reached", f"{event.sender}'s {reached} cap is reached", delay_s=min(opens_in, 60.0))

    async def _send(self, entry: LedgerEntry, attempt: Attempt, twilio: MessageSender, not_before: float) -> Delivered:
        event = entry.event
        # A loop, not one sleep: an event loop's timers may fire up to its clock's resolution early (a
        # millisecond with uvloop), and a 3-segment text sent 0.1 ms early is a fourth segment in a second.
        while (wait := not_before - self._clock.time()) > 0:
            await self._clock.sleep(wait)
        calling = time.perf_counter()
        try:
            accepted = await twilio.send(sender=event.sender, to=event.to, body=event.body,
                                         validity_period_s=event.validity_period_s)
        except SendFailure as failure:
            metrics.TWILIO_CALL_SECONDS.labels(failure.remedy).observe(time.perf_counter() - calling)
            return await self._failed(entry, attempt, failure)
        metrics.TWILIO_CALL_SECONDS.labels("accepted").observe(time.perf_counter() - calling)
        segments = accepted.segments or event.segments
        return await self._record_sent(entry, accepted.sid, segments, accepted.price, accepted.status)

    async def _failed(self, entry: LedgerEntry, attempt: Attempt, failure: SendFailure) -> Delivered:
        event = entry.event
        code, remedy = failure.twilio_code, failure.remedy
        fields = {"run_id": str(event.run_id), "sender": event.sender, "to": mask_phone(event.to), "code": code}
        if remedy == "retry":
            log.info("send.throttled", extra=fields)
            raise HoldRecord(failure.code, str(failure), delay_s=1.0)
        if remedy == "reconcile":
            attempt.must_reconcile = True
            log.warning("send.uncertain", extra=fields | {"error": str(failure)})
            raise HoldRecord(failure.code, str(failure), delay_s=2.0, segments_used=event.segments,
                             anchor=self._clock.time())
        if remedy == "pause_run":
            await self._store.pause_run(event.run_id, run_reasons.twilio_refused(code, str(failure),
                                                                                 sender=event.sender))
            log.error("run.paused", extra=fields | {"reason": str(failure)})
            raise HoldRecord(failure.code, str(failure), delay_s=1.0)
        if remedy == "suppress":
            await self._store.suppress(event)
            return await self._finish(entry, "suppressed", code)
        if remedy == "bad_number":
            await self._store.mark_bad_number(event, code or 0)
        log.info("send.failed", extra=fields)
        delivered = await self._finish(entry, "failed", code)
        await self._check_health(event)
        return delivered

    async def _reconcile(self, event: Recipient, claimed_at: datetime, twilio: MessageSender) -> str | None:
        try:
            sid = await twilio.find_sent(sender=event.sender, to=event.to, body=event.body, since=claimed_at)
        except SendFailure as failure:
            raise HoldRecord("reconcile_unavailable", f"cannot list Twilio messages: {failure}", delay_s=2.0) from None
        log.info("send.reconciled", extra={"run_id": str(event.run_id), "found": sid is not None})
        return sid

    async def _record_sent(self, entry: LedgerEntry, sid: str, segments: int, price: Decimal | None,
                           status: str) -> Delivered:
        anchor = self._clock.time()
        await self._store.record_sent(entry, sid, status, segments, price, anchor)
        metrics.count_text("sent", None, sender=entry.event.sender, segments=segments)
        result = send_result(entry.event, "sent", sid=sid, segments=segments)
        return Delivered(result, segments_used=segments if status != "adopted" else 0, anchor=anchor)

    async def _finish(self, entry: LedgerEntry, state: SendOutcome, code: int | None, *,
                      reason: str | None = None) -> Delivered:
        await self._store.record_final(entry, state, code, reason)
        metrics.count_text(state, code)
        return Delivered(send_result(entry.event, state, code=code))

    async def _check_health(self, event: Recipient) -> None:
        failed, total = await self._store.recent_outcomes(event.run_id, self._failure_window)
        if total >= 20 and failed / total > self._failure_threshold:
            await self._store.pause_run(event.run_id, run_reasons.failure_threshold(failed, total))
            log.error("run.paused", extra={"run_id": str(event.run_id), "reason": "failure_threshold",
                                           "failed": failed, "total": total})

