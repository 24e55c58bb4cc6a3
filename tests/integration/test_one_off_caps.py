"""One-off texts and the marketing cap (issue 25) on the real database: a staff reply, a keyword answer or a
revocation confirmation answers a member who wrote in, so it is conversational: it neither counts against
the member's marketing cap nor is stopped by it (docs/twilio.md, one-off texts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from harness import factories
from services.dispatcher.send_rules import QUERIES

SENDER, ANN = "+18885550100", "+14155550101"


async def test_one_off_texts_do_not_count_against_a_members_marketing_cap(db_pool: asyncpg.Pool) -> None:
    org = await factories.make_org(db_pool, marketing_cap_texts=2, marketing_cap_days=7)
    campaign = await factories.make_campaign(db_pool, org)
    earlier = await factories.make_run(db_pool, org, campaign, occurrence_at=factories.Sql("now() - interval '2 days'"))
    run = await factories.make_run(db_pool, org, campaign)
    recipient = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, segments, status)"
        " VALUES ($1, 0, $2, $3, 'M1', $4, 'Hi Ann', 1, 'queued')", run, recipient, org, ANN)
    await db_pool.execute(  # one campaign text this week
        "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_at, "
        "sent_at) VALUES ($1, gen_random_uuid(), $2, $3, $4, 1, 'sent', now(), now())", earlier, org, SENDER, ANN)
    for key in ("reply-1", "reply-2", "reply-3"):  # and three staff replies to her questions
        one_off = await db_pool.fetchval(
            "INSERT INTO one_off_texts (org_id, kind, idempotency_key, sender, phone, body, segments, state) "
            "VALUES ($1, 'staff_reply', $2, $3, $4, 'Yes, 7 pm.', 1, 'sent') RETURNING id", org, key, SENDER, ANN)
        await db_pool.execute(
            "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_at, "
            "sent_at, one_off_id) VALUES (NULL, gen_random_uuid(), $1, $2, $3, 1, 'sent', now(), now(), $4)",
            org, SENDER, ANN, one_off)

    async with db_pool.acquire() as conn:
        facts = await QUERIES.fetchrow(conn, "recipient-send-facts", org_ids=[org], to_numbers=[ANN], run_ids=[run],
                                       recipient_ids=[recipient], claimed_ats=[datetime.now(UTC)],
                                       campaign_ids=[campaign], nows=[datetime.now(UTC)], cap_days=[7])
    assert (facts["marketing"], facts["subject"]) == (1, 1)  # the campaign's text only: the cap of 2 is not reached
