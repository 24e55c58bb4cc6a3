"""``POST /api/v1/erasures`` on the real database: one member's numbers, names and words leave every table,
another member's rows stay, counts stay, and a member who said STOP is still refused by the audience rules.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from harness.credentials import TEST_SECRETS
from libs.common import audience_rules as rules
from libs.common.events import Recipient
from libs.common.merge import compile_template
from services.audience.db import AudienceStore
from services.dispatcher.db import DispatchStore
from services.dispatcher.snapshot import check_against_snapshot
from services.optout.db import OptoutDb
from tests.integration import api_harness
from tests.integration.api_harness import Caller, Org, problem, signed_in, with_api_key

pytestmark = pytest.mark.timeout(120)

SENDER = "+18885550100"
ANN = "+447400123456"  # the member to erase (iMIS id 10234), typed "07400 123456" in lists and files
ANN_DIGITS = "7400123456"
BOB = "+447400654321"  # another member (iMIS id 20777): nothing of his may change
# Every table erasure touches, with how to find one organisation's rows in it.
TABLES = {
    "run_recipients": "SELECT t::text FROM run_recipients t WHERE org_id = $1",
    "send_ledger": "SELECT t::text FROM send_ledger t WHERE org_id = $1",
    "inbound_messages": "SELECT t::text FROM inbound_messages t WHERE org_id = $1",
    "webhook_requests": "SELECT t::text FROM webhook_requests t WHERE org_id = $1 AND state <> 'pending'",
    "consent_history": "SELECT t::text FROM consent_history t WHERE org_id = $1",
    "suppressions": "SELECT t::text FROM suppressions t WHERE org_id = $1",
    "csv_upload_rows": "SELECT t::text FROM csv_upload_rows t JOIN csv_uploads u ON u.id = t.upload_id "
                       "WHERE u.org_id = $1",
    "csv_upload_rejections": "SELECT t::text FROM csv_upload_rejections t JOIN csv_uploads u ON u.id = t.upload_id "
                             "WHERE u.org_id = $1",
    "member_list_entries": "SELECT t::text FROM member_list_entries t JOIN member_lists l ON l.id = t.list_id "
                           "WHERE l.org_id = $1",
    "member_phone_index": "SELECT t::text FROM member_phone_index t WHERE org_id = $1",
    "bad_numbers": "SELECT t::text FROM bad_numbers t WHERE org_id = $1",
    "staff_test_numbers": "SELECT t::text FROM staff_test_numbers t WHERE org_id = $1",
    "imis_outbox": "SELECT t::text FROM imis_outbox t WHERE org_id = $1",
    "revocation_confirmations": "SELECT t::text FROM revocation_confirmations t WHERE org_id = $1",
    "inbox_conversations": "SELECT t::text FROM inbox_conversations t WHERE org_id = $1",
    "one_off_texts": "SELECT t::text FROM one_off_texts t WHERE org_id = $1",
    "event_outbox": "SELECT t::text FROM event_outbox t WHERE payload LIKE '%' || $1::uuid::text || '%'",
    "webhook_events": "SELECT t::text FROM webhook_events t WHERE org_id = $1",
    "short_links": "SELECT t::text FROM short_links t WHERE org_id = $1",
    "link_clicks": "SELECT t::text FROM link_clicks t WHERE org_id = $1",
}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@dataclass
class Seeded:
    org: Org
    admin: Caller
    sent_run: uuid.UUID
    live_run: uuid.UUID
    unsent_recipient: uuid.UUID


async def _seed(pool: asyncpg.Pool, client: httpx.AsyncClient) -> Seeded:
    """Ann (10234) and Bob (20777) in every table that can hold a number, a name or a message."""
    org = await api_harness.make_org(pool, prefix="+44", time_zone="Europe/London", sender=SENDER)
    admin = await signed_in(pool, client, org.id, role="admin")
    async with pool.acquire() as conn, conn.transaction():
        campaign = await conn.fetchval("INSERT INTO campaigns (org_id, name, body) VALUES ($1, 'AGM', "
                                       "'Hi {{first_name}}') RETURNING id", org.id)
        sent_run, live_run = [await conn.fetchval(
            "INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted) "
            "VALUES ($1, $2, now() - make_interval(mins => $3), $4, 2) RETURNING id", org.id, campaign, minutes, state)
            for minutes, state in ((60, "completed"), (1, "sending"))]
        ids = {(run, member): uuid.uuid4() for run in (sent_run, live_run) for member in ("10234", "20777", "30001")}
        for run in (sent_run, live_run):
            await conn.executemany(
                """INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, raw_phone, e164,
                       region, merge_values, body, encoding, segments, status, reason, detail, duplicate_of, sender)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 'GB', $8::jsonb, $9, 'GSM-7', $10, $11, $12, $13, $14, $15)""",
                [(run, 0, ids[(run, "10234")], org.id, "10234", "07400 123456", ANN, '{"first_name": "Ann"}',
                  "Hi Ann", 1, "queued", None, None, None, SENDER),
                 (run, 1, ids[(run, "20777")], org.id, "20777", "07400 654321", BOB, '{"first_name": "Bob"}',
                  "Hi Bob", 1, "queued", None, None, None, SENDER),
                 (run, 2, ids[(run, "30001")], org.id, "30001", "07400 123456", ANN, None, None, 0, "excluded",
                  "duplicate_number", "household", "10234", None)])
            await conn.execute("UPDATE run_recipients SET address_state = 'FL', address_time_zone = 'America/New_York' "
                               "WHERE run_id = $1", run)
        await conn.executemany(
            "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, message_sid) "
            "VALUES ($1, $2, $3, $4, $5, 1, 'sent', $6)",
            [(sent_run, ids[(sent_run, "10234")], org.id, SENDER, ANN, "SM" + uuid.uuid4().hex),
             (sent_run, ids[(sent_run, "20777")], org.id, SENDER, BOB, "SM" + uuid.uuid4().hex),
             (live_run, ids[(live_run, "20777")], org.id, SENDER, BOB, "SM" + uuid.uuid4().hex)])
        links = (("10234", "Q1", "81.2.69.0/24"), ("20777", "Q2", "81.2.70.0/24"))
        for member, tag, network in links:
            code = tag + secrets.token_urlsafe(8)[:10]
            await conn.execute("INSERT INTO short_links (code, org_id, run_id, recipient_id, url, expires_at) "
                               "VALUES ($1, $2, $3, $4, $5, now() + interval '30 days')", code, org.id, sent_run,
                               ids[(sent_run, member)], f"https://example.org/renew?member={member}")
            await conn.execute("INSERT INTO link_clicks (click_id, code, org_id, run_id, recipient_id, clicked_at, "
                               "agent_class, client_network) VALUES ($1, $2, $3, $4, $5, now(), 'mobile', $6)",
                               uuid.uuid4(), code, org.id, sent_run, ids[(sent_run, member)], network)
        hook = await conn.fetchval(
            "INSERT INTO webhook_requests (kind, org_id, account_sid, url, params, state) VALUES ('inbound', $1, "
            "'AC1', 'https://hooks.test/twilio/inbound', $2::jsonb, 'done') RETURNING id", org.id,
            json.dumps({"From": ANN, "To": SENDER, "Body": "STOP texting me, Ann", "MessageSid": "SM1",
                        "FromCity": "LONDON", "AccountSid": "AC1"}))
        await conn.execute(
            "INSERT INTO webhook_requests (kind, org_id, account_sid, url, params) VALUES ('inbound', $1, 'AC1', "
            "'https://hooks.test/twilio/inbound', $2::jsonb)", org.id, json.dumps({"From": BOB, "Body": "Hi"}))
        await conn.execute(
            "INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, keyword, "
            "webhook_request_id, received_at) VALUES ($1, 'SM1', $2, $2, $3, 'STOP texting me, Ann', 'opt_out', "
            "'STOP', $4, now())", org.id, ANN, SENDER, hook)
        consent = await conn.fetchval(
            "INSERT INTO consent_history (org_id, phone, action, source, keyword, body, message_sid, actor, changed) "
            "VALUES ($1, $2, 'opt_out', 'keyword', 'STOP', 'STOP texting me, Ann', 'SM1', 'member', true) "
            "RETURNING id", org.id, ANN)
        await conn.execute("INSERT INTO revocation_confirmations (org_id, consent_id, phone, sender, body) "
                           "VALUES ($1, $2, $3, $4, 'No more texts from us.')", org.id, consent, ANN, SENDER)
        conversation = await conn.fetchval(
            "INSERT INTO inbox_conversations (org_id, phone, sender, last_message_at) VALUES ($1, $2, $3, now())"
            " RETURNING id", org.id, ANN, SENDER)
        await conn.execute("INSERT INTO one_off_texts (org_id, kind, conversation_id, idempotency_key, sender, phone,"
                           " body, segments) VALUES ($1, 'staff_reply', $2, 'k1', $3, $4, 'Sorry Ann, noted.', 1)",
                           org.id, conversation, SENDER, ANN)
        await conn.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'keyword'), "
                           "($1, $3, '', 'staff')", org.id, ANN, BOB)
        upload = await conn.fetchval("INSERT INTO csv_uploads (org_id, state, rows_accepted, rows_rejected) "
                                     "VALUES ($1, 'ready', 2, 1) RETURNING id", org.id)
        await conn.execute(
            "INSERT INTO csv_upload_rows (upload_id, line, member_id, mobile, merge_values) VALUES "
            "($1, 2, '', '07400 123456', '{\"first_name\": \"Ann\"}'), ($1, 3, '20777', '07400 654321', '{}')", upload)
        await conn.execute("INSERT INTO csv_upload_rejections (upload_id, line, reason, raw) VALUES "
                           "($1, 4, 'row_ragged', 'Ann,Smith,07400 123456,extra')", upload)
        board = await conn.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'Board') RETURNING id", org.id)
        await conn.execute(
            "INSERT INTO member_list_entries (list_id, member_id, mobile, merge_values) VALUES "
            "($1, '10234', '07400123456', '{\"first_name\": \"Ann\"}'), ($1, 'X1', '+44 7400 123456', '{}'), "
            "($1, '20777', '07400 654321', '{\"first_name\": \"Bob\"}')", board)
        await conn.execute("INSERT INTO member_phone_index (org_id, phone, member_id) VALUES ($1, $2, '10234'), "
                           "($1, $3, '20777')", org.id, ANN, BOB)
        await conn.execute("INSERT INTO bad_numbers (org_id, phone, error_code) VALUES ($1, $2, 30003)", org.id, ANN)
        await conn.execute("INSERT INTO staff_test_numbers (org_id, phone, label, added_by) "
                           "VALUES ($1, $2, 'Ann at home', 'admin')", org.id, ANN)
        await conn.execute(
            "INSERT INTO imis_outbox (org_id, member_id, phone, action, source_text, occurred_at, consent_id, state) "
            "VALUES ($1, '10234', $2, 'opt_out', $3, now(), $4, 'done')", org.id, ANN, f"STOP from {ANN}", consent)
        await conn.execute(
            "INSERT INTO event_outbox (topic, key, payload, published_at) VALUES ('consent', $2, $1, now())",
            json.dumps({"org_id": str(org.id), "phone": ANN, "action": "opt_out"}), ANN)
        for phone in (ANN, BOB):
            await conn.execute(
                "INSERT INTO webhook_events (id, org_id, type, member_key, body, occurred_at)"
                " VALUES (gen_random_uuid(), $1, 'replied', $2, $3, now())", org.id, phone,
                json.dumps({"type": "replied", "data": {"phone": phone, "body": "STOP texting me" if phone == ANN
                                                         else "Thanks"}}))
    return Seeded(org, admin, sent_run, live_run, ids[(live_run, "10234")])


async def _rows_naming(pool: asyncpg.Pool, org: Org, needle: str) -> dict[str, int]:
    found = {}
    for table, query in TABLES.items():
        rows = [r[0] for r in await pool.fetch(query, org.id)]
        if hits := sum(needle in row for row in rows):
            found[table] = hits
    return found


async def test_erasing_by_imis_id_removes_the_member_everywhere_and_keeps_counts_and_the_suppression(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    seeded = await _seed(db_pool, client)
    org = seeded.org
    bob_before = await _rows_naming(db_pool, org, BOB.removeprefix("+44"))

    response = await seeded.admin.call("POST", "/api/v1/erasures", {"imis_id": "10234"})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["erased"] == {
        "list_entries": 2, "csv_rows": 1, "csv_rejections": 1, "dropped_unsent": 1, "run_recipients": 4,
        "send_ledger": 1, "replies": 1, "webhook_requests": 1, "consent_history": 1, "suppressions": 1,
        "imis_writebacks": 1, "member_phone_index": 1, "bad_numbers": 1, "test_numbers": 1, "outbox_events": 1,
        "revocation_confirmations": 1, "inbox_conversations": 1, "one_off_texts": 1, "webhook_events": 1,
        "short_links": 1, "link_clicks": 1,
    }
    assert (answer["numbers"], answer["suppressions_kept"], answer["already_erased"]) == (1, 1, False)
    # Nothing names Ann any more: not her number (any format), her name or her words.
    for needle in (ANN_DIGITS, "Ann", "STOP texting", "10234"):
        assert await _rows_naming(db_pool, org, needle) == {}, needle
    assert await _rows_naming(db_pool, org, BOB.removeprefix("+44")) == bob_before

    # Counts stay: the snapshot rows and their statuses, the run's figures, the upload's counts, the reply row.
    snapshot = await db_pool.fetch("SELECT status, reason, segments, erased_at IS NOT NULL AS erased "
                                   "FROM run_recipients WHERE run_id = $1 ORDER BY position", seeded.sent_run)
    assert [tuple(r) for r in snapshot] == [("queued", None, 1, True), ("queued", None, 1, False),
                                            ("excluded", "duplicate_number", 0, True)]
    addresses = await db_pool.fetch("SELECT address_state, address_time_zone FROM run_recipients WHERE run_id = $1 "
                                    "ORDER BY position", seeded.sent_run)
    assert [tuple(r) for r in addresses] == [(None, None), ("FL", "America/New_York"), (None, None)]  # Ann's go
    assert await db_pool.fetchval("SELECT rows_accepted FROM csv_uploads WHERE org_id = $1", org.id) == 2
    reply = await db_pool.fetchrow("SELECT kind, keyword, body FROM inbound_messages WHERE org_id = $1", org.id)
    assert tuple(reply) == ("opt_out", "STOP", "")
    consent = await db_pool.fetchrow("SELECT phone, body, action, phone_digest FROM consent_history "
                                     "WHERE org_id = $1", org.id)
    assert (consent["phone"], consent["body"], consent["action"]) == (None, None, "opt_out")
    hook = await db_pool.fetchval("SELECT params FROM webhook_requests WHERE org_id = $1 AND state = 'done'", org.id)
    assert json.loads(hook) == {"MessageSid": "SM1", "AccountSid": "AC1"}
    # Her unsent text in the live run is ended as dropped, so the run still completes and nothing is sent.
    unsent = await db_pool.fetchrow("SELECT state, reason, to_number FROM send_ledger WHERE run_id = $1 "
                                    "AND recipient_id = $2", seeded.live_run, seeded.unsent_recipient)
    assert tuple(unsent) == ("suppressed", "member_erased", "erased")
    # Her click still counts in the run's funnel, from no network; her short link is gone; Bob's stay.
    clicks = await db_pool.fetch("SELECT left(code, 2), client_network FROM link_clicks WHERE org_id = $1 "
                                 "ORDER BY code", org.id)
    assert [tuple(r) for r in clicks] == [("Q1", None), ("Q2", "81.2.70.0/24")]
    links_left = await db_pool.fetch("SELECT left(code, 2) AS tag FROM short_links WHERE org_id = $1", org.id)
    assert [r["tag"] for r in links_left] == ["Q2"]
    # The suppression stands, under the number's digest only.
    kept = await db_pool.fetch("SELECT phone_digest, scope, source FROM erased_suppressions WHERE org_id = $1",
                               org.id)
    assert [(r["scope"], r["source"]) for r in kept] == [("", "keyword")]
    assert kept[0]["phone_digest"] == consent["phone_digest"] and ANN_DIGITS not in kept[0]["phone_digest"]


async def test_an_erased_member_who_said_stop_is_still_excluded_by_the_audience_rules(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    seeded = await _seed(db_pool, client)
    assert (await seeded.admin.call("POST", "/api/v1/erasures", {"phone": "07400 123456"})).status_code == 200

    # A later audience brings her number back (iMIS still has it): the audience service refuses it.
    store = AudienceStore(db_pool, TEST_SECRETS)
    suppressed, _ = await store.excluded_numbers(seeded.org.id, SENDER, [ANN, "+447400999888"])
    assert suppressed == {ANN}
    members = [rules.AudienceMember("10234", "07400 123456", {"first_name": "Ann"}),
               rules.AudienceMember("40404", "07400 999888", {"first_name": "Cy"})]
    rows = rules.classify(members, compile_template("Hi {{first_name}}"), default_country_prefix="+44",
                          suppressed=suppressed, bad_numbers={})
    assert [(r.member_id, r.reason, r.detail) for r in rows] == [("10234", "opted_out", "suppressed"),
                                                                  ("40404", None, None)]


async def test_erasing_twice_is_fine_and_says_so(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    seeded = await _seed(db_pool, client)
    first = await seeded.admin.call("POST", "/api/v1/erasures", {"phone": ANN})
    again = await seeded.admin.call("POST", "/api/v1/erasures", {"phone": "+44 7400 123456"})

    assert first.status_code == 200 and again.status_code == 200, again.text
    assert first.json()["already_erased"] is False and first.json()["erased"]["suppressions"] == 1
    assert again.json()["already_erased"] is True and not any(again.json()["erased"].values())
    assert again.json()["suppressions_kept"] == 1
    assert await db_pool.fetchval("SELECT count(*) FROM erased_suppressions WHERE org_id = $1", seeded.org.id) == 1


async def test_the_erasure_is_audited_without_naming_the_member(db_pool: asyncpg.Pool,
                                                                client: httpx.AsyncClient) -> None:
    seeded = await _seed(db_pool, client)
    assert (await seeded.admin.call("POST", "/api/v1/erasures", {"imis_id": "10234"})).status_code == 200

    row = await db_pool.fetchrow("SELECT actor, action, target_type, detail, audit_events::text AS whole "
                                 "FROM audit_events WHERE org_id = $1 AND action = 'member.erased'", seeded.org.id)
    assert (row["actor"], row["target_type"]) == (seeded.admin.actor, "member")
    detail = json.loads(row["detail"])
    assert detail["by"] == "imis_id" and detail["counts"]["run_recipients"] == 4
    assert "10234" not in row["whole"] and ANN_DIGITS not in row["whole"]


async def test_a_member_textpulse_knows_nothing_of_gets_a_clear_answer(db_pool: asyncpg.Pool,
                                                                       client: httpx.AsyncClient) -> None:
    seeded = await _seed(db_pool, client)
    for body in ({"imis_id": "99999"}, {"phone": "+447400111222"}):
        answer = problem(await seeded.admin.call("POST", "/api/v1/erasures", body), 404, "member_unknown")
        assert "holds nothing for that member" in answer["detail"]


@pytest.mark.parametrize(("body", "code"), [
    ({"phone": "074"}, "phone_too_short"),
    ({"phone": "07400 12"}, "phone_invalid_for_region"),
    ({"phone": "call Ann"}, "phone_has_letters"),
    ({"imis_id": "10234", "phone": ANN}, "member_ambiguous"),
    ({}, "member_missing"),
    ({"imis_id": ""}, "request_invalid"),
])
async def test_bad_input_is_refused_in_plain_words(db_pool: asyncpg.Pool, client: httpx.AsyncClient,
                                                   body: dict[str, str], code: str) -> None:
    org = await api_harness.make_org(db_pool, prefix="+44")
    admin = await signed_in(db_pool, client, org.id, role="admin")
    problem(await admin.call("POST", "/api/v1/erasures", body), 422, code)


async def test_only_admins_may_erase(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    seeded = await _seed(db_pool, client)
    staff = await signed_in(db_pool, client, seeded.org.id, role="staff")
    staff_key = await with_api_key(db_pool, client, seeded.org.id, role="staff")
    for caller in (staff, staff_key):
        assert (await caller.call("POST", "/api/v1/erasures", {"imis_id": "10234"})).status_code == 403
    assert await db_pool.fetchval("SELECT count(*) FROM suppressions WHERE org_id = $1 AND phone = $2",
                                  seeded.org.id, ANN) == 1


async def test_an_erased_member_who_opts_back_in_is_texted_again(db_pool: asyncpg.Pool,
                                                                 client: httpx.AsyncClient) -> None:
    """START from the number (the opt-out service) or a staff lift removes the suppression kept as a digest."""
    by_start, by_staff = await _seed(db_pool, client), await _seed(db_pool, client)
    for seeded in (by_start, by_staff):
        assert (await seeded.admin.call("POST", "/api/v1/erasures", {"phone": ANN})).status_code == 200
    store = AudienceStore(db_pool, TEST_SECRETS)

    optout = OptoutDb.load(TEST_SECRETS)
    async with db_pool.acquire() as conn:
        lifted = await optout.lift_suppressions(conn, [(by_start.org.id, ANN, ""), (by_start.org.id, BOB, "")])
    assert lifted == {(by_start.org.id, ANN, ""), (by_start.org.id, BOB, "")}

    answer = await by_staff.admin.call("POST", "/api/v1/suppressions/lift", {"phone": ANN, "reason": "asked by phone"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed_scopes"] == [""]

    for seeded in (by_start, by_staff):
        assert await store.excluded_numbers(seeded.org.id, SENDER, [ANN]) == (set(), {})


async def test_the_dispatcher_never_sends_an_erased_members_text_of_a_live_run(db_pool: asyncpg.Pool,
                                                                               client: httpx.AsyncClient) -> None:
    seeded = await _seed(db_pool, client)
    campaign_id = await db_pool.fetchval("SELECT campaign_id FROM campaign_runs WHERE id = $1", seeded.live_run)
    # The event as the audience service published it before the erasure.
    event = Recipient(org_id=seeded.org.id, campaign_id=campaign_id, run_id=seeded.live_run,
                      recipient_id=seeded.unsent_recipient, sender=SENDER, to=ANN, body="Hi Ann", segments=1)
    store = DispatchStore(db_pool)
    assert check_against_snapshot(event, (await store.snapshot_rows([event]))[0]) is None

    assert (await seeded.admin.call("POST", "/api/v1/erasures", {"imis_id": "10234"})).status_code == 200

    refused = check_against_snapshot(event, (await store.snapshot_rows([event]))[0])
    assert refused is not None and refused.code == "recipient_erased"
    # A dispatcher that read the row before the erasure finds the recipient ended, not claimable.
    async with store.entry(event, uuid.uuid4(), "dispatcher-1") as entry:
        assert entry.state == "suppressed"
    await store.refresh_run_counts(seeded.live_run)
    run = await db_pool.fetchrow("SELECT state, sent, dropped FROM campaign_runs WHERE id = $1", seeded.live_run)
    assert tuple(run) == ("completed", 1, 1)  # Bob's text was sent, Ann's dropped: the run still ends


async def test_an_uploaded_file_with_an_erased_stopped_number_counts_it_opted_out(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    seeded = await _seed(db_pool, client)
    assert (await seeded.admin.call("POST", "/api/v1/erasures", {"imis_id": "10234"})).status_code == 200

    data = b"member_id,mobile,first_name\n10234,07400 123456,Ann\n40404,07400 999888,Cy\n"
    response = await client.post("/api/v1/audiences/csv", files={"file": ("members.csv", data, "text/csv")},
                                 headers=seeded.admin.headers)
    assert response.status_code == 201, response.text
    assert (response.json()["recipients"], response.json()["by_reason"]) == (1, {"opted_out": 1})
