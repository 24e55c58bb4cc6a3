"""Sending one-off texts (staff replies, keyword answers, revocation confirmations) exactly once.

The queue is ``one_off_texts`` (migration 0049; libs/common/one_off_texts.py queues them, and pending
revocation confirmations are adopted here). For each text due:

1. Its sender's pacing: the window of the campaign lane for that sender in this process, when there is one
   (so the text shares the sender's 3 segments a second with the campaigns), else one read from the ledger's
   last second for the sender (another process's lane writes there). The text starts only when it fits.
2. The claim (one statement): suppression is checked, and a suppressed member's text is refused
   (``suppressed``) - except a revocation confirmation, the only text sent to a suppressed number, and only
   while the revocation stands (else it is cancelled). A ``claimed`` ledger row (no run, ``one_off_id``)
   is committed before the Twilio call.
3. A claim left without an outcome (a crash, Twilio unreachable) is taken again after ``lease_s``: Twilio's
   list of messages from the sender to the number is searched first, and a text found there is adopted,
   not sent again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

import asyncpg

from libs.common.db import Queries, transaction
from libs.common.errors import PermanentError
from libs.common.logging import get_logger, mask_phone
from libs.common.outages import is_outage
from libs.common.segments import count_segments
from libs.common.twilio_errors import SendFailure, is_transient
from libs.common.twilio_sender import MessageSender
from services.dispatcher.clock import Clock
from services.dispatcher.pacing import SlidingWindow

QUERIES: Final = Queries.load(Path(__file__).with_name("one_off.sql"))

log = get_logger(__name__)

TwilioFor = Callable[[uuid.UUID], Awaitable[MessageSender]]
RecentSends = Callable[[str], Awaitable[list[tuple[float, int]]]]
LaneWindow = Callable[[str], SlidingWindow | None]


@dataclass(frozen=True, slots=True)
class OneOffTuning:
    poll_s: float = 0.2
    batch: int = 20
    lease_s: float = 30.0


class OneOffSender:
    def __init__(self, pool: asyncpg.Pool, twilio_for: TwilioFor, *, recent_sends: RecentSends,
                 lane_window: LaneWindow, clock: Clock, process_id: str,
                 tuning: OneOffTuning = OneOffTuning()) -> None:
        self._pool = pool
        self._twilio_for = twilio_for
        self._recent_sends = recent_sends
        self._lane_window = lane_window
        self._clock = clock
        self._process_id = process_id
        self._tuning = tuning
        self._rates: dict[str, float] = {}
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Send until cancelled; PostgreSQL or Twilio being away is waited out."""
        while True:
            try:
                sent = await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged; the texts stay queued and are tried again
                if is_outage(exc):
                    log.warning("one_off.stalled", extra={"error": repr(exc)[:300]})
                else:
                    log.exception("one_off.failed")
                sent = 0
            if not sent:
                self.wake.clear()
                await self._clock.wait(self.wake, self._tuning.poll_s)

    async def pass_once(self) -> int:
        """Adopt confirmations, then attempt every text due; returns how many were attempted."""
        async with self._pool.acquire() as conn:
            confirmations = await QUERIES.fetch(conn, "pending-confirmations", limit=self._tuning.batch)
            if confirmations:
                await QUERIES.execute(
                    conn, "adopt-confirmations", ids=[c["id"] for c in confirmations],
                    org_ids=[c["org_id"] for c in confirmations], senders=[c["sender"] for c in confirmations],
                    phones=[c["phone"] for c in confirmations], bodies=[c["body"] for c in confirmations],
                    segments=[count_segments(c["body"]).segments for c in confirmations])
            due = await QUERIES.fetch(conn, "due", lease_s=self._tuning.lease_s, limit=self._tuning.batch)
        for text in due:
            try:
                await self._attempt(text)
            except Exception as exc:  # noqa: BLE001 - this text waits out its lease; the others go on
                if not is_outage(exc):
                    raise
                log.warning("one_off.attempt_stalled", extra={"id": text["id"], "error": repr(exc)[:300]})
        return len(due)

    async def _attempt(self, text: asyncpg.Record) -> None:
        window = await self._window(text["org_id"], text["sender"])
        now = self._clock.time()
        start = window.earliest_start(now, text["segments"])
        if start > now:
            await self._clock.sleep(start - now)
        async with transaction(self._pool) as conn:
            claim = await QUERIES.fetchrow(conn, "claim", id=text["id"], lease_s=self._tuning.lease_s,
                                           process_id=self._process_id)
        if claim is None:
            return  # another process has it, or it may not be sent (its state says why)
        try:
            twilio = await self._twilio_for(text["org_id"])
        except PermanentError as exc:  # no Twilio account: this text can never go; the others still do
            await self._record_failed(text, None, exc.message)
            return
        if claim["was"] == "claimed":  # an earlier attempt may have reached Twilio: look before sending
            found = await twilio.find_sent(sender=text["sender"], to=text["phone"], body=text["body"],
                                           since=claim["was_claimed_at"])
            if found is not None:
                await self._record_sent(text, found, "accepted", text["segments"], None)
                return
        try:
            accepted = await twilio.send(sender=text["sender"], to=text["phone"], body=text["body"])
        except SendFailure as exc:
            window.record(self._clock.time(), text["segments"])
            if is_transient(exc.remedy):  # left claimed: taken again after the lease, looked up first
                log.warning("one_off.twilio_unavailable", extra={"id": text["id"], "error": exc.message[:200]})
                return
            await self._record_failed(text, exc.twilio_code, exc.message)
            return
        window.record(self._clock.time(), accepted.segments or text["segments"])
        await self._record_sent(text, accepted.sid, accepted.status, accepted.segments or text["segments"],
                                accepted.price)

    async def _record_failed(self, text: asyncpg.Record, error_code: int | None, reason: str) -> None:
        async with self._pool.acquire() as conn:
            await QUERIES.execute(conn, "record-failed", id=text["id"], error_code=error_code, reason=reason[:500])
        log.warning("one_off.refused", extra={"id": text["id"], "error_code": error_code, "reason": reason[:200]})

    async def _record_sent(self, text: asyncpg.Record, sid: str, status: str, segments: int,
                           price: Decimal | None) -> None:
        async with self._pool.acquire() as conn:
            await QUERIES.execute(conn, "record-sent", id=text["id"], message_sid=sid, twilio_status=status,
                                  segments=segments, price=price)
        log.info("one_off.sent", extra={"id": text["id"], "kind": text["kind"], "to": mask_phone(text["phone"]),
                                        "message_sid": sid})

    async def _window(self, org_id: uuid.UUID, sender: str) -> SlidingWindow:
        lane = self._lane_window(sender)
        if lane is not None:
            return lane
        # Another process may be sending the sender's campaign: its texts of the last second are in the
        # ledger (claimed ones counted as just sent), so the window is read from there each time.
        rate = self._rates.get(sender)
        if rate is None:
            async with self._pool.acquire() as conn:
                rate = float(await QUERIES.fetchval(conn, "sender-rate", org_id=org_id, address=sender) or 1.0)
            self._rates[sender] = rate
        window = SlidingWindow(rate)
        for anchor, segments in await self._recent_sends(sender):
            window.record(anchor, segments)
        return window
