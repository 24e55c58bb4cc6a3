"""The dispatcher's send gate on the real database: a recipient's address comes with the snapshot rows read for
its fetched batch, so without a cap or a state limit its quiet-hours verdict needs no read of its own, and it
says what the recipient's own read would say; entries asked about at once have their caps counted together."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from harness import factories
from libs.common.events import Recipient
from services.dispatcher.db import DispatchStore
from services.dispatcher.send_rules import SendGate

SENDER = "+18885550100"
LATE = datetime(2026, 12, 3, 2, 30, tzinfo=UTC)  # 9:30 pm in New York, 6:30 pm in San Francisco
NEW_YORK_OPENS = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # 8 am Eastern
NOON = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)  # noon in San Francisco


async def verdicts(gate: SendGate, events: list[Recipient]) -> list[tuple[str, datetime | None]]:
    found = [await gate.verdict(e, LATE, LATE.timestamp()) for e in events]
    return [(v.kind, v.until) for v in found]


async def test_the_address_from_the_snapshot_rows_decides_without_a_read_of_its_own(db_pool: asyncpg.Pool) -> None:
    org = await factories.make_org(db_pool, time_zone="America/New_York")
    await factories.make_sender(db_pool, org, SENDER)
    campaign = await factories.make_campaign(db_pool, org, state="sending")
    run = await factories.make_run(db_pool, org, campaign, state="sending", occurrence_at=LATE)
    states = ["NY", None]  # a New Yorker and a Californian, both on San Francisco numbers
    events = [Recipient(org_id=org, campaign_id=campaign, run_id=run, recipient_id=uuid.uuid4(), sender=SENDER,
                        to=f"+1415555010{i}", body="Hi", segments=1) for i in range(len(states))]
    await db_pool.executemany(
        "INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, segments, status, "
        "sender, address_state) VALUES ($1, $2, $3, $4, $5, $6, 'Hi', 1, 'queued', $7, $8)",
        [(run, i, e.recipient_id, org, str(i), e.to, SENDER, state)
         for i, (e, state) in enumerate(zip(events, states, strict=True))])
    expected = [("hold", NEW_YORK_OPENS), ("send", None)]

    assert await verdicts(SendGate(db_pool), events) == expected  # nothing noted: each recipient's row is read

    noted = SendGate(db_pool)
    noted.note_addresses(events, await DispatchStore(db_pool).snapshot_rows(events))
    # The noted address decides: with the snapshot's address gone, the New Yorker is still held.
    await db_pool.execute("UPDATE run_recipients SET address_state = NULL WHERE run_id = $1", run)
    assert await verdicts(noted, events) == expected
    # Asked again (a retried delivery), the note is spent and the row is read.
    assert await verdicts(noted, events[:1]) == [("send", None)]


async def test_entries_asked_about_at_once_are_counted_together_and_each_gets_its_own_answer(
    db_pool: asyncpg.Pool,
) -> None:
    org = await factories.make_org(db_pool, time_zone="America/Los_Angeles", marketing_cap_texts=3,
                                   marketing_cap_days=7)
    await factories.make_sender(db_pool, org, SENDER)
    earlier = await factories.make_campaign(db_pool, org, name="Earlier", state="completed")
    earlier_run = await factories.make_run(db_pool, org, earlier, state="completed")
    campaign = await factories.make_campaign(db_pool, org, state="sending")
    run = await factories.make_run(db_pool, org, campaign, state="sending", occurrence_at=NOON)
    events = [Recipient(org_id=org, campaign_id=campaign, run_id=run, recipient_id=uuid.uuid4(), sender=SENDER,
                        to=f"+1415555{i:04d}", body="Hi", segments=1) for i in range(40)]
    await db_pool.executemany(
        "INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, segments, status, "
        "sender) VALUES ($1, $2, $3, $4, $5, $6, 'Hi', 1, 'queued', $7)",
        [(run, i, e.recipient_id, org, str(i), e.to, SENDER) for i, e in enumerate(events)])
    capped = {e.to for e in events[::3]}  # three marketing texts this week already: the cap
    await db_pool.executemany(
        "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_at,"
        " sent_at) VALUES ($1, gen_random_uuid(), $2, $3, $4, 1, 'sent', $5, $5)",
        [(earlier_run, org, SENDER, number, NOON - timedelta(days=day)) for number in capped for day in (1, 2, 3)])
    gate = SendGate(db_pool)
    reads: list[int] = []
    read = gate._facts._read_many

    async def counted(batch: list[Any]) -> Any:
        reads.append(len(batch))
        return await read(batch)

    gate._facts._read_many = counted

    found = await asyncio.gather(*(gate.verdict(e, NOON, NOON.timestamp()) for e in events))

    assert [v.kind for v in found] == ["frequency_capped" if e.to in capped else "send" for e in events]
    assert sum(reads) == len(events) and len(reads) < len(events)  # asked together, answered in fewer reads
