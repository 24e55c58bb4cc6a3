"""PostgreSQL going away for a moment holds a recipient back for a retry (reconciled first when its ledger
entry may have been written); it is never dead-lettered, and a fault that is not an outage still is."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import asyncpg
import pytest
from aiokafka import TopicPartition

from libs.common.events import Recipient
from services.dispatcher.clock import SystemClock
from services.dispatcher.delivery import Attempt, Delivered, Deliverer, HoldRecord
from services.dispatcher.lanes import Item, SenderLane
from services.dispatcher.pacing import SlidingWindow


class FailingLedger:
    def __init__(self, error: BaseException) -> None:
        self._error = error

    async def run_state(self, run_id: uuid.UUID) -> str:
        return "sending"

    @asynccontextmanager
    async def entry(self, *_: object, **__: object):
        raise self._error
        yield


def recipient() -> Recipient:
    return Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                     sender="+18885550100", to="+14155550100", body="Hi", segments=2)


@pytest.mark.parametrize("outage", [
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    ConnectionRefusedError(111, "Connection refused"),
], ids=type)
async def test_a_database_outage_holds_the_recipient_and_reconciles_before_any_send(outage: Exception) -> None:
    attempt = Attempt()
    with pytest.raises(HoldRecord) as held:
        await Deliverer(FailingLedger(outage), process_id="test", clock=SystemClock()).deliver(recipient(), attempt,
                                                                                               twilio=None)
    assert attempt.must_reconcile and held.value.code == "ledger_unavailable"
    assert held.value.segments_used == 2  # it may have reached Twilio: the pacing window counts it


async def test_a_fault_that_is_not_an_outage_is_not_held() -> None:
    with pytest.raises(asyncpg.exceptions.UndefinedColumnError):
        await Deliverer(FailingLedger(asyncpg.exceptions.UndefinedColumnError("column x does not exist")),
                        process_id="test", clock=SystemClock()).deliver(recipient(), Attempt(), twilio=None)


async def test_a_lane_holds_a_recipient_it_could_not_start_while_postgres_was_away_then_sends_it() -> None:
    """The run's state or the account could not be read (before any ledger entry): the recipient waits in
    its lane and goes when PostgreSQL answers again, instead of being dead-lettered."""
    tries: list[Attempt] = []
    done: asyncio.Queue[tuple[Delivered | None, BaseException | None]] = asyncio.Queue()

    async def deliver(event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
        tries.append(attempt)
        if len(tries) == 1:
            raise asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
        return Delivered(None)

    async def finish(item: Item, delivered: Delivered | None, error: BaseException | None) -> None:
        await done.put((delivered, error))

    lane = SenderLane("+18885550100", TopicPartition("t", 0), SlidingWindow(30), deliver, finish, clock=SystemClock())
    lane.start()
    lane.add(Item(record=None, event=recipient()))
    try:
        delivered, error = await asyncio.wait_for(done.get(), timeout=30)
    finally:
        await lane.stop()
    assert error is None and delivered == Delivered(None)
    assert len(tries) == 2 and tries[0] is tries[1]  # the same attempt, tried again


async def test_a_lane_says_once_that_it_holds_a_paused_run_and_again_after_it_sent_for_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``lane.run_paused`` is the dispatcher's acknowledgement of a pause: logged the first time the lane
    holds the run, not at every retry, and again for a later pause once the run has sent in between."""
    states = iter(["paused", "paused", "paused", "sending", "paused", "sending"])
    done: asyncio.Queue[Delivered | None] = asyncio.Queue()

    async def deliver(event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
        if next(states) == "paused":
            raise HoldRecord("run_paused", "the run is paused", delay_s=0.01)
        return Delivered(None)

    async def finish(item: Item, delivered: Delivered | None, error: BaseException | None) -> None:
        await done.put(delivered)

    lane = SenderLane("+18885550100", TopicPartition("t", 0), SlidingWindow(30), deliver, finish, clock=SystemClock())
    event = recipient()
    caplog.set_level("INFO", logger="services.dispatcher.lanes")
    lane.start()
    try:
        lane.add(Item(record=None, event=event))
        await asyncio.wait_for(done.get(), timeout=30)
        lane.add(Item(record=None, event=event))
        await asyncio.wait_for(done.get(), timeout=30)
    finally:
        await lane.stop()
    acknowledged = [r for r in caplog.records if r.getMessage() == "lane.run_paused"]
    assert [(r.__dict__["sender"], r.__dict__["run_id"]) for r in acknowledged] == [
        ("+18885550100", str(event.run_id))] * 2
