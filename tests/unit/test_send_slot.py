"""A text is handed to Twilio no earlier than its pacing slot, even when the event loop's timers fire early
(uvloop's have millisecond resolution: a 3-segment text sent 0.1 ms early is a fourth segment in a second).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

from libs.common.events import Recipient
from libs.common.twilio_sender import Accepted
from services.dispatcher import delivery
from services.dispatcher.db import LedgerEntry
from services.dispatcher.delivery import Attempt, Deliverer


class RecordingTwilio:
    def __init__(self) -> None:
        self.called_at: float | None = None

    async def send(self, **_: object) -> Accepted:
        self.called_at = time.time()
        return Accepted(sid="SM" + uuid.uuid4().hex, status="queued", segments=3, price=Decimal("0"))


class LedgerStub:
    async def record_sent(self, entry: LedgerEntry, *_: object) -> None:
        entry.released = True


async def test_the_twilio_call_waits_for_its_slot_when_a_sleep_ends_early(monkeypatch) -> None:
    real_sleep = asyncio.sleep

    async def early_sleep(seconds: float) -> None:
        await real_sleep(max(seconds - 0.002, 0))  # wakes 2 ms before it was asked to

    monkeypatch.setattr(delivery.asyncio, "sleep", early_sleep)
    event = Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                      sender="+18885550100", to="+14155550100", body="Hi", segments=3)
    entry = LedgerEntry(None, 1, event, "claimed", uuid.uuid4(), None)
    twilio = RecordingTwilio()
    slot = time.time() + 0.05
    delivered = await Deliverer(LedgerStub(), process_id="test")._send(entry, Attempt(), twilio, slot)
    assert twilio.called_at is not None and twilio.called_at >= slot, f"{slot - twilio.called_at:.6f} s early"
    assert delivered.segments_used == 3 and delivered.anchor >= twilio.called_at
