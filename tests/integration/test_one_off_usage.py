"""One-off texts (staff replies, keyword answers, revocation confirmations) in usage and cost, on the real
database: each outcome counted once on the organisation's day, statuses and prices reaching it by SID."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from harness.factories import fresh_sid
from libs.common.events import MessageStatus
from services.usage import handlers
from services.usage.handlers import UsageDeps
from services.usage.one_off_usage import OneOffUsage, outcome_of
from tests.integration.usage_harness import Org, seed_org

SENDER = "+18885550100"
ANN, BOB, CAL, DEE = "+14155550101", "+14155550102", "+14155550103", "+14155550104"


async def one_off(pool: asyncpg.Pool, org: Org, phone: str, state: str, *, segments: int = 2,
                  sid: str | None = None, attempted: bool = True, error_code: int | None = None) -> int:
    """A staff reply in ``state``; ``attempted``: it reached the send step (its ledger row)."""
    async with pool.acquire() as conn, conn.transaction():
        text_id: int = await conn.fetchval(
            "INSERT INTO one_off_texts (org_id, kind, idempotency_key, sender, phone, body, segments, state, "
            "message_sid, error_code, sent_at) VALUES ($1, 'staff_reply', $2, $3, $4, 'Thanks, noted.', $5, $6, $7, "
            "$8, CASE WHEN $6 = 'sent' THEN now() END) RETURNING id",
            org.id, uuid.uuid4().hex, SENDER, phone, segments, state, sid, error_code)
        if attempted:
            await conn.execute(
                "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, "
                "message_sid, one_off_id) VALUES (NULL, gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7)",
                org.id, SENDER, phone, segments, state, sid, text_id)
    return text_id


async def day_usage(pool: asyncpg.Pool, org: Org) -> asyncpg.Record:
    return await pool.fetchrow("SELECT messages, segments, failed, dropped, delivered, segment_cost, failed_fees "
                               "FROM usage_daily WHERE org_id = $1 AND NOT test", org.id)


def test_a_failure_before_any_attempt_is_dropped_not_failed() -> None:
    assert outcome_of("sent", attempted=True) == "sent"
    assert outcome_of("failed", attempted=True) == "failed"
    assert outcome_of("failed", attempted=False) == "cancelled"  # an erased member's text never sent
    assert outcome_of("suppressed", attempted=False) == "suppressed"


async def test_one_off_texts_count_once_in_the_organisations_day_with_their_statuses(db_pool: asyncpg.Pool) -> None:
    org = await seed_org(db_pool, allowance=10_000)
    deps = UsageDeps(pool=db_pool, base_url="https://app.textpulse.test")
    sent_sid, early_sid = fresh_sid(), fresh_sid()
    await one_off(db_pool, org, ANN, "sent", segments=2, sid=sent_sid)
    await handlers.record_status(MessageStatus(org_id=org.id, message_sid=early_sid, status="delivered"), deps=deps)
    await one_off(db_pool, org, BOB, "sent", segments=1, sid=early_sid)  # its status arrived first, held
    await one_off(db_pool, org, CAL, "failed", error_code=21211)
    await one_off(db_pool, org, DEE, "suppressed", attempted=False)
    pending = await one_off(db_pool, org, DEE, "pending", attempted=False)

    counter = OneOffUsage(deps)
    while await counter.run_once():
        pass
    day = await day_usage(db_pool, org)
    assert (day["messages"], day["segments"], day["failed"], day["dropped"], day["delivered"]) == (2, 3, 1, 1, 1)
    assert day["segment_cost"] > 0 and day["failed_fees"] == 0  # a refusal at submission pays no fee
    assert await db_pool.fetchval("SELECT count(*) FROM usage_messages WHERE org_id = $1 AND run_id IS NULL",
                                  org.id) == 4
    assert not await db_pool.fetchval("SELECT counted FROM one_off_texts WHERE id = $1", pending)

    await handlers.record_status(MessageStatus(org_id=org.id, message_sid=sent_sid, status="failed",
                                               error_code=30007, price=Decimal("-0.0083")), deps=deps)
    await db_pool.execute("UPDATE one_off_texts SET counted = false WHERE org_id = $1", org.id)  # a pass redone
    while await counter.run_once():
        pass
    again = await day_usage(db_pool, org)
    assert (again["messages"], again["segments"], again["failed"], again["dropped"]) == (2, 3, 2, 1)
    assert again["failed_fees"] == Decimal("0.001")  # Twilio's fee for a message that ended failed
    assert await db_pool.fetchval("SELECT count(*) FROM usage_runs WHERE org_id = $1", org.id) == 0
