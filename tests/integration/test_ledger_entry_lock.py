"""The send ledger's entry lock, against the real database: what keeps two processes that hold the same
recipient (a rebalance overlap) from both texting it.

Each test plays two dispatcher processes with two stores on separate pools: A holds the entry (as during
its Twilio call), B arrives with the same recipient. Both claim first sights either through the batched
ledger writer (as the dispatcher does) or each on a connection of its own (as a capped sender does).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from harness import factories
from libs.common.db import create_pool
from libs.common.events import Recipient
from services.dispatcher.clock import SystemClock
from services.dispatcher.db import QUERIES, DispatchStore
from services.dispatcher.delivery import Attempt, Deliverer
from services.dispatcher.ledger_writer import LedgerWriter


@pytest.fixture
async def recipient(db_pool: asyncpg.Pool) -> Recipient:
    org_id = await factories.make_org(db_pool, slug=factories.new_slug("lock"), name="Lock test")
    campaign_id = await factories.make_campaign(db_pool, org_id, name="T", body="x", state="sending")
    run_id = await factories.make_run(db_pool, org_id, campaign_id, state="sending", targeted=1)
    return Recipient(org_id=org_id, campaign_id=campaign_id, run_id=run_id, recipient_id=uuid.uuid4(),
                     sender="+18885550100", to="+14155550199", body="Hello", segments=1)


@pytest.fixture(params=["ledger writer", "own connections"])
async def stores(request: pytest.FixtureRequest,
                 database_url: str) -> AsyncIterator[tuple[DispatchStore, DispatchStore]]:
    pools = [await create_pool(database_url, min_size=1, max_size=3) for _ in range(2)]
    writers = [LedgerWriter(pool, QUERIES, name) for pool, name in zip(pools, "AB", strict=True)]
    if request.param == "ledger writer":
        for writer in writers:
            writer.start()
        yield DispatchStore(pools[0], writer=writers[0]), DispatchStore(pools[1], writer=writers[1])
        for writer in writers:
            await writer.stop()
    else:
        yield DispatchStore(pools[0]), DispatchStore(pools[1])
    for pool in pools:
        await pool.close()


async def test_a_second_holder_waits_for_the_first_and_then_sees_its_outcome(
    stores: tuple[DispatchStore, DispatchStore], recipient: Recipient,
) -> None:
    a, b = stores
    async with a.entry(recipient, uuid.uuid4(), "A") as held:
        assert (held.state, held.suppressed) == ("claimed", False)
        waiting = asyncio.create_task(_entry_state(b, recipient, uuid.uuid4(), "B"))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "B went ahead while A held the entry"
        sid = "SM" + uuid.uuid4().hex
        await a.record_sent(held, sid, "queued", 1, None, 0.0)
    assert await asyncio.wait_for(waiting, 5) == ("sent", sid)


async def test_an_entry_given_up_without_an_outcome_is_seen_claimed_by_its_first_holder(
    stores: tuple[DispatchStore, DispatchStore], recipient: Recipient,
) -> None:
    a, b = stores
    first = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with a.entry(recipient, first, "A"):
            raise RuntimeError("Twilio answered 429: the record is held back")
    async with b.entry(recipient, uuid.uuid4(), "B") as seen:
        assert (seen.state, seen.claim_token) == ("claimed", first)  # B must reconcile before any send


async def test_a_killed_holders_lock_dies_with_its_connection(
    stores: tuple[DispatchStore, DispatchStore], recipient: Recipient, database_url: str,
) -> None:
    a, b = stores
    async with a.entry(recipient, uuid.uuid4(), "A") as held:
        waiting = asyncio.create_task(_entry_state(b, recipient, uuid.uuid4(), "B"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        killer = await asyncpg.connect(database_url)
        holders = await killer.fetchval(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_locks
               WHERE locktype = 'advisory' AND granted AND (classid::bigint << 32 | objid::bigint) = $1""",
            held.key & 0xFFFF_FFFF_FFFF_FFFF)
        await killer.close()
        assert holders == 1
        assert await asyncio.wait_for(waiting, 5) == ("claimed", None)
        held.released = True  # its connection is gone


async def test_a_cancelled_holder_leaves_no_lock_on_a_pooled_connection(
    stores: tuple[DispatchStore, DispatchStore], recipient: Recipient,
) -> None:
    a, b = stores
    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with a.entry(recipient, uuid.uuid4(), "A"):
            entered.set()
            await asyncio.sleep(3600)

    holder = asyncio.create_task(hold_forever())
    await entered.wait()
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert await asyncio.wait_for(_entry_state(b, recipient, uuid.uuid4(), "B"), 5) == ("claimed", None)
    # A's pool still works, and none of its connections holds the entry.
    assert await asyncio.wait_for(_entry_state(a, recipient, uuid.uuid4(), "A"), 5) == ("claimed", None)


async def test_a_suppressed_number_is_seen_on_first_claim(
    stores: tuple[DispatchStore, DispatchStore], recipient: Recipient, db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await conn.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, $3, 'keyword')",
                           recipient.org_id, recipient.to, recipient.sender)
    async with stores[0].entry(recipient, uuid.uuid4(), "A") as held:
        assert (held.state, held.suppressed) == ("claimed", True)


async def _entry_state(store: DispatchStore, recipient: Recipient, token: uuid.UUID,
                       process_id: str) -> tuple[str, str | None]:
    async with store.entry(recipient, token, process_id) as entry:
        return entry.state, entry.message_sid


class StopDuringReconcile:
    """Twilio as a redelivery sees it: no message found, and the member's STOP lands while it looks."""

    def __init__(self, db_pool: asyncpg.Pool, recipient: Recipient) -> None:
        self._pool, self._recipient = db_pool, recipient
        self.sent = 0

    async def find_sent(self, **_: object) -> None:
        r = self._recipient
        await self._pool.execute(
            "INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'keyword')", r.org_id, r.to)

    async def send(self, **_: object) -> None:
        self.sent += 1
        raise AssertionError("a member who said STOP during the reconcile was texted")


async def test_a_stop_committed_while_a_redelivery_reconciles_is_honoured(
    stores: tuple[DispatchStore, DispatchStore], recipient: Recipient, db_pool: asyncpg.Pool,
) -> None:
    a, b = stores
    with pytest.raises(RuntimeError):
        async with a.entry(recipient, uuid.uuid4(), "A"):
            raise RuntimeError("A died during its Twilio call")
    twilio = StopDuringReconcile(db_pool, recipient)
    delivered = await Deliverer(b, process_id="B", clock=SystemClock()).deliver(recipient, Attempt(), twilio)  # type: ignore[arg-type]
    assert twilio.sent == 0 and delivered.result is not None and delivered.result.outcome == "suppressed"
    state = await db_pool.fetchval("SELECT state FROM send_ledger WHERE run_id = $1 AND recipient_id = $2",
                                   recipient.run_id, recipient.recipient_id)
    assert state == "suppressed"
