"""A member's STOP and START take effect in the order Twilio delivered them, whatever order they are applied in.

The fallback can reorder them: a STOP appended to ``textpulse.webhooks`` while the intake is behind, then
Kafka fails and the member's START is written to PostgreSQL directly and applied first. When the STOP
arrives it is older than the START the member sent after it: it is recorded (``superseded``) and changes
nothing: no suppression, no ConsentChanged, no iMIS write-back. The history shows both in receipt order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from harness import factories
from harness.kafka import running_publisher
from libs.common.events import WebhookReceived
from libs.common.topics import WEBHOOKS
from tests.conftest import eventually
from tests.integration.optout_harness import PUBLIC_BASE, OptoutHarness, Org, fresh_phone, running_optout


@pytest.fixture
async def optout(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool) as harness:
        yield harness


@pytest.fixture
async def org(optout: OptoutHarness) -> Org:
    org = await optout.new_org()
    async with optout.pool.acquire() as conn:  # write-backs are queued (never delivered: nothing listens there)
        await factories.make_imis_account(conn, org.id, base_url="http://127.0.0.1:9")
    return org


async def _member_seen(optout: OptoutHarness, org: Org, phone: str) -> None:
    async with optout.pool.acquire() as conn:
        await conn.execute("INSERT INTO member_phone_index (org_id, phone, member_id) VALUES ($1, $2, 'M100')",
                           org.id, phone)


async def _deliver_late(optout: OptoutHarness, org: Org, kafka_bootstrap: str, body: str, phone: str,
                        received_at: datetime) -> None:
    """What the edge appended at ``received_at``, reaching the intake only now; waits until it is applied."""
    event = WebhookReceived(kind="inbound", org_id=org.id, account_sid=org.account_sid,
                            url=PUBLIC_BASE + "/twilio/inbound", params=optout.inbound_params(org, body, phone),
                            occurred_at=received_at)
    async with running_publisher(kafka_bootstrap, optout.prefix) as (publisher, _):
        await publisher.publish(WEBHOOKS, event, key=f"{org.id}:{phone}")

    async def applied() -> bool:
        state = await optout.fetchval("SELECT state FROM webhook_requests WHERE request_id = $1", event.event_id)
        return state == "done" and await optout.settled(org)

    await eventually(applied, timeout=30)


async def _history(optout: OptoutHarness, org: Org, phone: str) -> list[tuple[str, str, bool, bool]]:
    rows = await optout.fetch(
        "SELECT scope, action, changed, superseded FROM consent_history WHERE org_id = $1 AND phone = $2"
        " ORDER BY occurred_at, scope", org.id, phone)
    return [(r["scope"], r["action"], r["changed"], r["superseded"]) for r in rows]


async def _writebacks(optout: OptoutHarness, org: Org, phone: str) -> list[str]:
    rows = await optout.fetch("SELECT action FROM imis_outbox WHERE org_id = $1 AND phone = $2 ORDER BY id",
                              org.id, phone)
    return [r["action"] for r in rows]


async def test_a_stop_applied_after_the_later_start_leaves_the_member_opted_in(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    phone = fresh_phone()
    await _member_seen(optout, org, phone)
    assert (await optout.inbound(org, "STOP", phone)).status_code == 200  # an earlier STOP, applied in order
    await eventually(lambda: optout.settled(org), timeout=30)
    stop_received = datetime.now(UTC)  # the member's second STOP reached the edge, and waited in Kafka
    assert (await optout.inbound(org, "START", phone)).status_code == 200  # later, applied first
    await eventually(lambda: optout.settled(org), timeout=30)
    assert await optout.scopes_suppressed(org, phone) == set()

    await _deliver_late(optout, org, kafka_bootstrap, "STOP", phone, stop_received)

    assert await optout.scopes_suppressed(org, phone) == set()  # the START, the member's latest word, stands
    assert await _history(optout, org, phone) == [
        ("", "opt_out", True, False), (org.sender, "opt_out", True, False),
        ("", "opt_out", False, True), (org.sender, "opt_out", False, True),  # recorded where it belongs
        ("", "opt_in", True, False), (org.sender, "opt_in", True, False),
    ]
    assert [e["action"] for e in optout.events.consent(phone)] == ["opt_out"] * 2 + ["opt_in"] * 2
    assert await _writebacks(optout, org, phone) == ["opt_out", "opt_in"]


async def test_a_start_applied_after_the_later_stop_leaves_the_member_suppressed(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    phone = fresh_phone()
    await _member_seen(optout, org, phone)
    start_received = datetime.now(UTC) - timedelta(seconds=1)
    assert (await optout.inbound(org, "STOP", phone)).status_code == 200
    await eventually(lambda: optout.settled(org), timeout=30)

    await _deliver_late(optout, org, kafka_bootstrap, "START", phone, start_received)

    assert await optout.scopes_suppressed(org, phone) == {"", org.sender}
    assert await _history(optout, org, phone) == [
        ("", "opt_in", False, True), (org.sender, "opt_in", False, True),
        ("", "opt_out", True, False), (org.sender, "opt_out", True, False),
    ]
    assert [e["action"] for e in optout.events.consent(phone)] == ["opt_out"] * 2
    assert await _writebacks(optout, org, phone) == ["opt_out"]


async def test_a_staff_lift_does_not_make_a_members_earlier_stop_stale(
    optout: OptoutHarness, org: Org, kafka_bootstrap: str
) -> None:
    """Staff decide on what they see; a STOP they had not seen yet must still suppress the number."""
    phone = fresh_phone()
    stop_received = datetime.now(UTC) - timedelta(seconds=1)
    async with optout.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO consent_history (org_id, phone, scope, action, source, actor, reason, changed)"
            " VALUES ($1, $2, '', 'opt_in', 'staff', 'staff@example.org', 'asked us by phone', false)",
            org.id, phone)

    await _deliver_late(optout, org, kafka_bootstrap, "STOP", phone, stop_received)

    assert await optout.scopes_suppressed(org, phone) == {"", org.sender}
