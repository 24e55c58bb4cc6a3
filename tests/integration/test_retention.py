"""The retention pruner on the real database: only rows past their organisation's setting go, in
batches; counts, suppressions and consent history stay."""

from __future__ import annotations

import json
import logging
import uuid

import asyncpg
import pytest

from harness.factories import fresh_sid
from services.usage.retention import QUERIES, RetentionPruner, RetentionTuning
from tests.integration.usage_harness import Org, seed_org

pytestmark = pytest.mark.timeout(120)

PHONE = "+14155550123"


async def _webhook(pool: asyncpg.Pool, org: Org, days_ago: float, state: str = "done") -> int:
    return await pool.fetchval(
        """INSERT INTO webhook_requests (kind, org_id, account_sid, url, params, received_at, state)
           VALUES ('inbound', $1, 'AC1', 'https://hooks.test/twilio/inbound', '{"Body": "STOP"}',
                   now() - make_interval(days => $2::integer), $3) RETURNING id""", org.id, int(days_ago), state)


async def _reply(pool: asyncpg.Pool, org: Org, days_ago: int, body: str) -> int:
    return await pool.fetchval(
        """INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, received_at)
           VALUES ($1, $2, $3, $3, '+18885550100', $4, 'other', now() - make_interval(days => $5)) RETURNING id""",
        org.id, fresh_sid(), PHONE, body, days_ago)


async def _ended_run(pool: asyncpg.Pool, org: Org, days_ago: int) -> uuid.UUID:
    run = await pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted, finished_at)
           VALUES ($1, $2, now() - make_interval(days => $3), 'completed', 3, now() - make_interval(days => $3))
           RETURNING id""", org.id, org.campaign_id, days_ago)
    await pool.executemany(
        """INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, segments, status,
                                       reason, merge_values)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)""",
        [(run, i, uuid.uuid4(), org.id, f"M{i}", f"+1415555020{i}", f"Hi Ann {i}", 1, "queued", None,
          '{"first_name": "Ann"}') for i in range(2)]
        + [(run, 2, uuid.uuid4(), org.id, "M2", None, None, 0, "excluded", "missing_mobile", None)])
    return run


async def _upload(pool: asyncpg.Pool, org: Org, days_ago: int, rows: int = 3) -> uuid.UUID:
    upload = await pool.fetchval(
        """INSERT INTO csv_uploads (org_id, state, rows_accepted, rows_rejected, created_at)
           VALUES ($1, 'ready', $2, 1, now() - make_interval(days => $3)) RETURNING id""", org.id, rows, days_ago)
    await pool.executemany(
        "INSERT INTO csv_upload_rows (upload_id, line, member_id, mobile) VALUES ($1, $2, $3, $4)",
        [(upload, line, f"M{line}", f"+1415555030{line}") for line in range(2, 2 + rows)])
    await pool.execute("INSERT INTO csv_upload_rejections (upload_id, line, reason, raw) "
                       "VALUES ($1, 99, 'invalid_number', 'Ann,Smith,12')", upload)
    return upload


async def test_only_rows_past_each_organisations_setting_are_pruned_and_counts_and_consent_stay(
    db_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    strict, lenient = await seed_org(db_pool), await seed_org(db_pool)
    await db_pool.execute("UPDATE organisations SET retention_webhook_days = 5, retention_reply_days = 5 "
                          "WHERE id = $1", strict.id)

    old_hooks = [await _webhook(db_pool, strict, 10) for _ in range(5)]
    pending_hook = await _webhook(db_pool, strict, 10, state="pending")
    recent_hook = await _webhook(db_pool, strict, 1)
    lenient_hook = await _webhook(db_pool, lenient, 10)  # 30 days by default
    lenient_old_hook = await _webhook(db_pool, lenient, 40)
    await db_pool.execute(
        """INSERT INTO status_callbacks (org_id, message_sid, message_status, received_at)
           VALUES ($1, $2, 'delivered', now() - interval '10 days'), ($1, $3, 'delivered', now())""",
        strict.id, "SMold", "SMnew")
    await db_pool.execute(
        """INSERT INTO usage_pending_statuses (message_sid, status, org_id, received_at)
           VALUES ($2, 'delivered', $1, now() - interval '10 days'), ($3, 'delivered', $1, now())""",
        strict.id, "SMheld-old", "SMheld-new")
    old_reply, new_reply = await _reply(db_pool, strict, 10, "Is the AGM on?"), await _reply(db_pool, strict, 1, "Yes")
    old_run, recent_run = await _ended_run(db_pool, strict, 100), await _ended_run(db_pool, strict, 10)
    old_upload, recent_upload = await _upload(db_pool, strict, 100), await _upload(db_pool, strict, 10)
    used_upload = await _upload(db_pool, strict, 100)
    await db_pool.execute(
        "INSERT INTO campaigns (org_id, name, state, audience) VALUES ($1, 'Monthly', 'scheduled', $2::jsonb)",
        strict.id, json.dumps({"kind": "csv", "upload_id": str(used_upload)}))
    outbox = await db_pool.fetch(
        """INSERT INTO event_outbox (topic, key, payload, created_at, published_at)
           VALUES ('consent', 'k', '{}', now() - interval '9 days', now() - interval '8 days'),
                  ('consent', 'k', '{}', now() - interval '2 days', now() - interval '1 day'),
                  ('consent', 'k', '{}', now() - interval '9 days', NULL)
           RETURNING id""")
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, source) VALUES ($1, $2, 'keyword')",
                          strict.id, PHONE)
    await db_pool.execute(
        """INSERT INTO consent_history (org_id, phone, action, source, keyword, body, actor, changed, occurred_at)
           VALUES ($1, $2, 'opt_out', 'keyword', 'STOP', 'STOP', 'member', true, now() - interval '400 days')""",
        strict.id, PHONE)

    with caplog.at_level(logging.INFO, logger="services.usage.retention"):
        pruned = await RetentionPruner(db_pool, tuning=RetentionTuning(batch=2)).prune()

    hooks = {r["id"] for r in await db_pool.fetch("SELECT id FROM webhook_requests WHERE org_id = ANY($1)",
                                                  [strict.id, lenient.id])}
    assert hooks == {pending_hook, recent_hook, lenient_hook}
    assert set(old_hooks).isdisjoint(hooks) and lenient_old_hook not in hooks
    assert await db_pool.fetchval("SELECT array_agg(message_sid) FROM status_callbacks WHERE org_id = $1",
                                  strict.id) == ["SMnew"]
    assert await db_pool.fetchval("SELECT array_agg(message_sid) FROM usage_pending_statuses WHERE org_id = $1",
                                  strict.id) == ["SMheld-new"]
    replies = dict(await db_pool.fetch("SELECT id, body FROM inbound_messages WHERE org_id = $1", strict.id))
    assert replies == {old_reply: "", new_reply: "Yes"}  # the reply itself is still counted

    snapshots = await db_pool.fetch(
        "SELECT run_id, position, body, merge_values, status, segments FROM run_recipients "
        "WHERE run_id = ANY($1) ORDER BY run_id, position", [old_run, recent_run])
    old = [r for r in snapshots if r["run_id"] == old_run]
    assert [(r["body"], r["merge_values"], r["status"], r["segments"]) for r in old] == [
        ("", None, "queued", 1), ("", None, "queued", 1), (None, None, "excluded", 0)]
    assert [r["body"] for r in snapshots if r["run_id"] == recent_run] == ["Hi Ann 0", "Hi Ann 1", None]

    rows = dict(await db_pool.fetch("SELECT upload_id, count(*) FROM csv_upload_rows WHERE upload_id = ANY($1) "
                                    "GROUP BY upload_id", [old_upload, recent_upload, used_upload]))
    assert rows == {recent_upload: 3, used_upload: 3}
    assert await db_pool.fetchval("SELECT raw FROM csv_upload_rejections WHERE upload_id = $1", old_upload) == ""
    assert await db_pool.fetchval("SELECT rows_accepted FROM csv_uploads WHERE id = $1", old_upload) == 3

    kept = {r["id"] for r in await db_pool.fetch("SELECT id FROM event_outbox WHERE id = ANY($1)",
                                                 [r["id"] for r in outbox])}
    assert kept == {outbox[1]["id"], outbox[2]["id"]}  # published a day ago; not published yet
    assert await db_pool.fetchval("SELECT count(*) FROM suppressions WHERE org_id = $1", strict.id) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM consent_history WHERE org_id = $1", strict.id) == 1

    assert pruned["webhook_requests"] >= 6 and pruned["run_recipients"] >= 2 and pruned["csv_upload_rows"] >= 3
    [logged] = [r for r in caplog.records if r.getMessage() == "retention.pruned"]
    assert logged.webhook_requests == pruned["webhook_requests"]  # type: ignore[attr-defined]

    again = await RetentionPruner(db_pool, tuning=RetentionTuning(batch=2)).prune()
    assert again["webhook_requests"] == 0 and again["run_recipients"] == 0 and again["csv_upload_rows"] == 0


async def _one_off(pool: asyncpg.Pool, org: Org, days_ago: int, state: str) -> int:
    return await pool.fetchval(
        """INSERT INTO one_off_texts (org_id, kind, idempotency_key, sender, phone, body, segments, state, created_at)
           VALUES ($1, 'staff_reply', $2, '+18885550100', $3, 'Sorry Ann, noted.', 1, $4,
                   now() - make_interval(days => $5)) RETURNING id""", org.id, uuid.uuid4().hex, PHONE, state, days_ago)


async def test_a_one_off_texts_words_go_with_rendered_texts_once_it_has_an_outcome(db_pool: asyncpg.Pool) -> None:
    org = await seed_org(db_pool)
    await db_pool.execute("UPDATE organisations SET retention_body_days = 30 WHERE id = $1", org.id)
    sent, failed = await _one_off(db_pool, org, 40, "sent"), await _one_off(db_pool, org, 40, "failed")
    waiting, recent = await _one_off(db_pool, org, 40, "pending"), await _one_off(db_pool, org, 10, "sent")

    pruned = await RetentionPruner(db_pool, tuning=RetentionTuning(batch=1)).prune()

    texts = {r["id"]: (r["body"], r["phone"], r["state"]) for r in await db_pool.fetch(
        "SELECT id, body, phone, state FROM one_off_texts WHERE org_id = $1", org.id)}
    assert texts == {sent: ("", PHONE, "sent"), failed: ("", PHONE, "failed"),
                     waiting: ("Sorry Ann, noted.", PHONE, "pending"), recent: ("Sorry Ann, noted.", PHONE, "sent")}
    assert pruned["one_off_texts"] >= 2


async def test_one_prune_statement_takes_at_most_one_batch(db_pool: asyncpg.Pool) -> None:
    org = await seed_org(db_pool)
    await db_pool.execute("UPDATE organisations SET retention_webhook_days = 5 WHERE id = $1", org.id)
    for _ in range(5):
        await _webhook(db_pool, org, 10)
    async with db_pool.acquire() as conn:
        taken = await QUERIES.fetchval(conn, "prune-webhook-requests", org_id=org.id, days=5, batch=2)
    assert taken == 2
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_requests WHERE org_id = $1", org.id) == 3


async def _outgoing_event(pool: asyncpg.Pool, org: Org, endpoint: uuid.UUID, days_ago: int, *,
                          pending: bool = False) -> uuid.UUID:
    event = uuid.uuid4()
    await pool.execute(
        """INSERT INTO webhook_events (id, org_id, type, member_key, body, occurred_at, created_at)
           VALUES ($1, $2, 'replied', $3, '{"data": {"body": "Will renew"}}', now() - make_interval(days => $4),
                   now() - make_interval(days => $4))""", event, org.id, PHONE, days_ago)
    await pool.execute(
        """INSERT INTO webhook_deliveries (event_id, endpoint_id, org_id, member_key, delivered_at)
           VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN NULL ELSE now() END)""", event, endpoint, org.id, PHONE, pending)
    return event


async def test_outgoing_events_go_with_raw_webhooks_once_no_delivery_is_still_tried(db_pool: asyncpg.Pool) -> None:
    org = await seed_org(db_pool)
    await db_pool.execute("UPDATE organisations SET retention_webhook_days = 5 WHERE id = $1", org.id)
    endpoint = await db_pool.fetchval(
        "INSERT INTO webhook_endpoints (org_id, url, secret, event_types) VALUES ($1, 'https://crm.test/hook', 'x',"
        " '{replied}') RETURNING id", org.id)
    delivered_long_ago = await _outgoing_event(db_pool, org, endpoint, 10)
    still_tried = await _outgoing_event(db_pool, org, endpoint, 10, pending=True)
    recent = await _outgoing_event(db_pool, org, endpoint, 1)

    pruned = await RetentionPruner(db_pool, tuning=RetentionTuning(batch=1)).prune()

    left = {r["id"] for r in await db_pool.fetch("SELECT id FROM webhook_events WHERE org_id = $1", org.id)}
    assert left == {still_tried, recent}
    deliveries = {r["event_id"] for r in await db_pool.fetch(
        "SELECT event_id FROM webhook_deliveries WHERE org_id = $1", org.id)}
    assert deliveries == {still_tried, recent} and delivered_long_ago not in deliveries
    assert pruned["webhook_events"] >= 1
