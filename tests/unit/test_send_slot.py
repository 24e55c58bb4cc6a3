"""A text is handed to Twilio no earlier than its pacing slot, even when the event loop's timers fire early
(uvloop's have millisecond resolution: a 3-segment text sent 0.1 ms early is a fourth segment in a second).
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from libs.common.events import Recipient
from libs.common.twilio_sender import Accepted
from services.dispatcher.db import LedgerEntry
from services.dispatcher.delivery import Attempt, Deliverer


class EarlyWakingClock:
    """A clock of its own time whose sleeps longer than 2 ms end 2 ms before they were asked to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds - 0.002 if seconds > 0.002 else seconds

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        await self.sleep(timeout)


class RecordingTwilio:
    def __init__(self, clock: EarlyWakingClock) -> None:
        self.called_at: float | None = None
        self._clock = clock

    async def send(self, **_: object) -> Accepted:
        self.called_at = self._clock.time()
        return Accepted(sid="SM" + uuid.uuid4().hex, status="queued", segments=3, price=Decimal("0"))


class LedgerStub:
    async def record_sent(self, entry: LedgerEntry, *_: object) -> None:
        entry.released = True


async def test_the_twilio_call_waits_for_its_slot_when_a_sleep_ends_early() -> None:
    clock = EarlyWakingClock()
    event = Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                      sender="+18885550100", to="+14155550100", body="Hi", segments=3)
    entry = LedgerEntry(None, 1, event, "claimed", uuid.uuid4(), None)
    twilio = RecordingTwilio(clock)
    slot = clock.time() + 0.05
    delivered = await Deliverer(LedgerStub(), process_id="test", clock=clock)._send(entry, Attempt(), twilio, slot)
    assert twilio.called_at is not None and twilio.called_at >= slot, f"{slot - twilio.called_at:.6f} s early"
    assert delivered.segments_used == 3 and delivered.anchor >= twilio.called_at
