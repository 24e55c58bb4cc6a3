"""A sender's pace and verification reach the dispatcher's pacing window within the TTL
(services/dispatcher/sender_profiles.py), on the real database. The clock is injected: no test waits."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from harness import factories
from libs.common.errors import PermanentError
from libs.common.events import Recipient
from services.dispatcher.db import DispatchStore
from services.dispatcher.sender_profiles import SenderProfiles
from tests.integration import api_harness

SENDER = "+18885550142"
OTHER = "+18885550144"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def recipient(org_id: uuid.UUID, sender: str = SENDER) -> Recipient:
    return Recipient(org_id=org_id, campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                     sender=sender, to="+14155550100", body="Hello", segments=1)


async def test_a_changed_rate_and_verification_reach_the_window_after_the_ttl(db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool, sender=SENDER)
    clock = Clock()
    profiles = SenderProfiles(DispatchStore(db_pool), ttl_s=5.0, clock=clock)
    await factories.make_sender(db_pool, org.id, OTHER)
    event, other = recipient(org.id), recipient(org.id, OTHER)
    window, other_window = await profiles.window_for(event), await profiles.window_for(other)
    assert window.limit == other_window.limit == 3
    assert await profiles.verification(event) == "verified"

    await db_pool.execute("UPDATE senders SET segments_per_second = 150, verification = 'pending' WHERE id = $1",
                          org.sender_id)
    await db_pool.execute("UPDATE senders SET segments_per_second = 25 WHERE org_id = $1 AND address = $2",
                          org.id, OTHER)
    clock.now += 4.9
    assert await profiles.verification(event) == "verified" and window.limit == 3  # inside the TTL
    clock.now += 0.1
    assert await profiles.verification(event) == "pending"
    assert window.limit == 150  # the lane's own window, changed in place
    assert other_window.limit == 25 and await profiles.verification(other) == "verified"  # read in the same go

    await db_pool.execute("DELETE FROM senders WHERE id = $1", org.sender_id)
    clock.now += 5
    assert await profiles.verification(event) == "pending" and window.limit == 150  # what was read last


async def test_a_sender_without_a_row_gets_no_window(db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool, sender=SENDER)
    with pytest.raises(PermanentError) as refused:
        await SenderProfiles(DispatchStore(db_pool)).window_for(recipient(org.id, "+18885550143"))
    assert refused.value.code == "sender_unknown"
