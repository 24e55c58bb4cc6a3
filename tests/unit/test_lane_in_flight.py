"""A fast sender's lane keeps several sends going at once, a 3 segments/s one sends one at a time, and a
lane that stops lets every send in flight finish (``services/dispatcher/lanes.py``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition

from libs.common.events import Recipient
from services.dispatcher.clock import SystemClock
from services.dispatcher.delivery import Attempt, Delivered
from services.dispatcher.lanes import Item, SenderLane, max_in_flight
from services.dispatcher.pacing import SlidingWindow


def recipient() -> Recipient:
    return Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                     sender="+18885550100", to="+14155550100", body="Hi", segments=1)


class GatedTwilio:
    """Sends that end only when the test opens the gate; counts how many were going at once."""

    def __init__(self) -> None:
        self.going = 0
        self.most = 0
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def deliver(self, event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
        self.going += 1
        self.most = max(self.most, self.going)
        self.started.set()
        await self.gate.wait()
        self.going -= 1
        return Delivered(None)


def test_the_sends_in_flight_grow_with_the_senders_rate() -> None:
    assert [max_in_flight(rate) for rate in (1, 3, 19, 20, 25, 150)] == [1, 1, 1, 2, 2, 15]


@pytest.mark.parametrize(("rate", "expected"), [(3, 1), (150, 15)])
async def test_a_lane_keeps_up_to_its_sends_in_flight_and_stops_only_after_they_end(rate: int, expected: int) -> None:
    twilio, finished = GatedTwilio(), []

    async def finish(item: Item, delivered: Delivered | None, error: BaseException | None) -> None:
        finished.append((delivered, error))

    window = SlidingWindow(rate)
    lane = SenderLane("+18885550100", TopicPartition("t", 0), window, twilio.deliver, finish, clock=SystemClock())
    lane.start()
    for _ in range(40):
        lane.add(Item(record=None, event=recipient()))
    await asyncio.wait_for(twilio.started.wait(), timeout=30)
    while twilio.going < expected:  # the lane starts the rest as the loop turns; no wall-clock wait
        await asyncio.sleep(0)
    for _ in range(100):  # and starts no more, however often the loop turns
        await asyncio.sleep(0)
    assert twilio.most == expected and window.in_flight == expected

    stopping = asyncio.create_task(lane.stop())
    for _ in range(100):
        await asyncio.sleep(0)
    assert not stopping.done()  # waits for the sends in flight
    twilio.gate.set()
    await asyncio.wait_for(stopping, timeout=30)
    assert len(finished) == expected and all(error is None for _, error in finished)
    assert window.in_flight == 0
