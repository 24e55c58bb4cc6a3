"""Revocation in a member's own words, end to end on real PostgreSQL and Kafka: Twilio's webhook through the
opt-out service, then the review queue and manual revocations through ``/api/v1/revocations``.

The API's routers are mounted on a bare app on the same database (services/api/main.py wires them in the
real service), as in test_suppressions_api.py.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.bare_api import bare_api
from services.api.routes import revocations, suppressions
from services.optout.review_holds import ReviewHold, hold_for_review
from tests.conftest import eventually
from tests.integration.optout_harness import OptoutHarness, Org, fresh_sid, running_optout

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
async def optout(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool) as harness:
        yield harness


@pytest.fixture(scope="module")
async def api(db_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with db_pool.acquire() as conn:
        await revocations.QUERIES.check(conn)
    async with bare_api(db_pool, revocations.router, suppressions.router) as client:
        yield client


async def writeback_org(optout: OptoutHarness, *, confirmations: bool = True) -> Org:
    """An organisation of the opt-out harness with iMIS write-back set up and, if asked, confirmation texts."""
    org = await optout.new_org()
    await factories.make_imis_account(optout.pool, org.id, username="u", password="p")
    await optout.pool.execute("UPDATE organisations SET revocation_confirmation = $2 WHERE id = $1", org.id,
                              confirmations)
    return org


async def member(optout: OptoutHarness, org: Org, member_id: str = "23145") -> str:
    """A member's number in the iMIS index, valid by the numbering plan (staff type it in the API too)."""
    phone = f"+1415{random.randrange(200, 1000)}{random.randrange(10**4):04d}"
    await optout.pool.execute("INSERT INTO member_phone_index (org_id, phone, member_id) VALUES ($1, $2, $3)",
                              org.id, phone, member_id)
    return phone


async def reply(optout: OptoutHarness, org: Org, body: str, phone: str, sid: str | None = None) -> str:
    """Send an inbound webhook and wait until it is processed; returns its outcome."""
    sid = sid or fresh_sid()
    query = ("SELECT outcome FROM webhook_requests WHERE org_id = $1 AND params->>'MessageSid' = $2"
             " AND state = 'done' ORDER BY id DESC")
    before = len(await optout.fetch(query, org.id, sid))  # a retried webhook is a second row
    response = await optout.inbound(org, body, phone, MessageSid=sid)
    assert response.status_code == 200, response.text

    async def outcome() -> str | None:
        rows = await optout.fetch(query, org.id, sid)
        return rows[0]["outcome"] if len(rows) > before else None

    return str(await eventually(outcome))


async def suppressions_of(optout: OptoutHarness, org: Org, phone: str) -> dict[str, str]:
    rows = await optout.fetch("SELECT scope, source FROM suppressions WHERE org_id = $1 AND phone = $2", org.id, phone)
    return {r["scope"]: r["source"] for r in rows}


async def count(optout: OptoutHarness, sql: str, *args: Any) -> int:
    return int(await optout.fetchval(sql, *args))


async def confirmations_of(optout: OptoutHarness, org: Org, phone: str) -> list[asyncpg.Record]:
    return await optout.fetch("SELECT sender, body, state FROM revocation_confirmations"
                              " WHERE org_id = $1 AND phone = $2", org.id, phone)


# ---------------------------------------------------------------------------------------------
# Through the opt-out service


async def test_a_free_text_revocation_suppresses_records_writes_back_and_confirms_once(optout: OptoutHarness) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    sid = fresh_sid()
    assert await reply(optout, org, "Please stop texting me!", phone, sid) == "revoked"

    assert await suppressions_of(optout, org, phone) == {"": "reply", org.sender: "reply"}
    history = await optout.fetch("SELECT scope, source, keyword, body, actor, changed FROM consent_history"
                                 " WHERE org_id = $1 AND phone = $2 ORDER BY scope", org.id, phone)
    assert [dict(r) for r in history] == [
        {"scope": s, "source": "reply", "keyword": "stop texting", "body": "Please stop texting me!", "actor": "member",
         "changed": True} for s in ("", org.sender)]
    jobs = await optout.fetch("SELECT member_id, action, source_text FROM imis_outbox WHERE org_id = $1 AND phone = $2",
                              org.id, phone)
    assert [(j["member_id"], j["action"]) for j in jobs] == [("23145", "opt_out")]
    assert "Reply revoking consent ('stop texting')" in jobs[0]["source_text"]
    events = await eventually(lambda: optout.events.consent(phone))
    assert {(e["action"], e["source"], e["message_sid"]) for e in events} == {("opt_out", "keyword", sid)}
    confirmations = await confirmations_of(optout, org, phone)
    assert [(c["sender"], c["state"]) for c in confirmations] == [(org.sender, "pending")]
    assert confirmations[0]["body"].startswith("You will receive no more texts")

    # Twilio retries the webhook: nothing more. The member says it again: recorded (and written back, as a
    # second STOP is), but the number was revoked already, so no second confirmation.
    assert await reply(optout, org, "Please stop texting me!", phone, sid) == "duplicate"
    assert await count(optout, "SELECT count(*) FROM imis_outbox WHERE org_id = $1 AND phone = $2", org.id, phone) == 1
    assert await reply(optout, org, "no more texts", phone) == "revoked"
    assert len(await confirmations_of(optout, org, phone)) == 1


async def test_a_twilio_keyword_gets_no_confirmation_of_ours(optout: OptoutHarness) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    assert await reply(optout, org, "STOP", phone) == "opted_out"  # Twilio has answered it already
    assert await suppressions_of(optout, org, phone) == {"": "keyword", org.sender: "keyword"}
    assert await confirmations_of(optout, org, phone) == []


async def test_no_confirmation_unless_the_organisation_enabled_it(optout: OptoutHarness) -> None:
    org = await writeback_org(optout, confirmations=False)
    phone = await member(optout, org)
    assert await reply(optout, org, "unsubscribe me", phone) == "revoked"
    assert await suppressions_of(optout, org, phone) == {"": "reply", org.sender: "reply"}
    assert await confirmations_of(optout, org, phone) == []


async def test_a_doubtful_reply_is_held_for_review_and_treated_as_revoked(optout: OptoutHarness) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    assert await reply(optout, org, "Can you stop?", phone) == "review_held"
    assert await suppressions_of(optout, org, phone) == {"": "review_hold"}
    assert await optout.fetchval("SELECT is_suppressed($1, $2, $3)", org.id, phone, org.sender) is True
    reviews = await optout.fetch("SELECT r.state, r.matched, r.language, r.scope FROM revocation_reviews r"
                                 " JOIN inbound_messages m ON m.id = r.inbound_message_id"
                                 " WHERE r.org_id = $1 AND m.phone = $2", org.id, phone)
    assert [dict(r) for r in reviews] == [{"state": "pending", "matched": "stop", "language": "en",
                                           "scope": org.sender}]
    # Not a consent change yet: no history, no write-back, no event, no confirmation.
    for table in ("consent_history", "imis_outbox", "revocation_confirmations"):
        assert await count(optout, f"SELECT count(*) FROM {table} WHERE org_id = $1 AND phone = $2", org.id, phone) == 0


async def test_an_ordinary_reply_changes_nothing(optout: OptoutHarness) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    assert await reply(optout, org, "Stop by the booth at 3!", phone) == "reply_stored"
    assert await suppressions_of(optout, org, phone) == {}
    assert await count(optout, "SELECT count(*) FROM revocation_reviews WHERE org_id = $1", org.id) == 0


# ---------------------------------------------------------------------------------------------
# Staff decide, and record revocations received another way


async def caller(optout: OptoutHarness, org: Org, role: str) -> dict[str, str]:
    key = await factories.make_api_key(optout.pool, org.id, name=f"{role}-{uuid.uuid4().hex[:6]}", role=role)
    return {"Authorization": f"Bearer {key}"}


async def held_review(optout: OptoutHarness, org: Org, phone: str, body: str = "wrong number") -> int:
    assert await reply(optout, org, body, phone) == "review_held"
    return int(await optout.fetchval(
        "SELECT r.id FROM revocation_reviews r JOIN inbound_messages m ON m.id = r.inbound_message_id"
        " WHERE r.org_id = $1 AND m.phone = $2 ORDER BY r.id DESC LIMIT 1", org.id, phone))


async def test_staff_decide_a_revocation(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    review_id = await held_review(optout, org, phone)
    admin = await caller(optout, org, "admin")

    queue = await api.get("/api/v1/revocations/reviews", headers=await caller(optout, org, "staff"))
    assert queue.status_code == 200, queue.text
    assert [(i["id"], i["phone"], i["body"], i["matched"]) for i in queue.json()["items"]] == [
        (review_id, phone, "wrong number", "wrong number")]

    response = await api.post(f"/api/v1/revocations/reviews/{review_id}/decision", headers=admin,
                              json={"decision": "revocation", "note": "read as a revocation"})
    assert response.status_code == 200, response.text
    assert response.json() == {"review_id": review_id, "decision": "revocation", "phone": phone,
                               "changed_scopes": ["", org.sender], "superseded": False, "confirmation_queued": True}
    assert await suppressions_of(optout, org, phone) == {"": "review", org.sender: "review"}
    history = await optout.fetch("SELECT scope, source, actor, changed FROM consent_history WHERE org_id = $1"
                                 " AND phone = $2 ORDER BY scope", org.id, phone)
    assert [(h["scope"], h["source"], h["changed"]) for h in history] == [("", "review", True),
                                                                          (org.sender, "review", True)]
    assert await count(optout, "SELECT count(*) FROM imis_outbox WHERE org_id = $1 AND phone = $2", org.id, phone) == 1
    assert len(await confirmations_of(optout, org, phone)) == 1
    assert await count(optout, "SELECT count(*) FROM event_outbox WHERE topic = 'textpulse.consent'"
                               " AND payload::jsonb->>'phone' = $1", phone) == 2
    audit = await optout.fetch("SELECT action, after FROM audit_events WHERE org_id = $1 AND target_id = $2",
                               org.id, str(review_id))
    assert [a["action"] for a in audit] == ["revocation.reviewed"]

    again = await api.post(f"/api/v1/revocations/reviews/{review_id}/decision", headers=admin,
                           json={"decision": "not_revocation"})
    assert again.status_code == 409 and again.json()["code"] == "review_decided"
    assert await suppressions_of(optout, org, phone) == {"": "review", org.sender: "review"}
    assert (await api.get("/api/v1/revocations/reviews", headers=admin)).json()["items"] == []


async def test_staff_decide_not_a_revocation(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    first = await held_review(optout, org, phone, "Can you stop?")
    second = await held_review(optout, org, phone, "not interested")
    admin = await caller(optout, org, "admin")

    response = await api.post(f"/api/v1/revocations/reviews/{first}/decision", headers=admin,
                              json={"decision": "not_revocation"})
    assert response.status_code == 200, response.text
    assert response.json()["changed_scopes"] == []  # the second reply still waits: the number stays held
    assert await suppressions_of(optout, org, phone) == {"": "review_hold"}

    response = await api.post(f"/api/v1/revocations/reviews/{second}/decision", headers=admin,
                              json={"decision": "not_revocation", "note": "asked about the gala"})
    assert response.status_code == 200, response.text
    assert response.json()["changed_scopes"] == [""]
    assert await suppressions_of(optout, org, phone) == {}
    for table in ("consent_history", "imis_outbox", "revocation_confirmations"):
        assert await count(optout, f"SELECT count(*) FROM {table} WHERE org_id = $1 AND phone = $2", org.id, phone) == 0


async def test_not_a_revocation_leaves_an_earlier_stop_in_place(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    review_id = await held_review(optout, org, phone)
    assert await reply(optout, org, "STOP", phone) == "opted_out"  # the STOP replaces the hold
    assert await suppressions_of(optout, org, phone) == {"": "keyword", org.sender: "keyword"}
    history = await optout.fetch("SELECT scope, changed FROM consent_history WHERE org_id = $1 AND phone = $2"
                                 " ORDER BY scope", org.id, phone)
    assert [(h["scope"], h["changed"]) for h in history] == [("", True), (org.sender, True)]
    response = await api.post(f"/api/v1/revocations/reviews/{review_id}/decision",
                              headers=await caller(optout, org, "admin"), json={"decision": "not_revocation"})
    assert response.status_code == 200, response.text
    assert response.json()["changed_scopes"] == []
    assert await suppressions_of(optout, org, phone) == {"": "keyword", org.sender: "keyword"}


async def test_a_later_start_wins_over_a_late_decision(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    review_id = await held_review(optout, org, phone)
    assert await reply(optout, org, "START", phone) == "opted_in"
    response = await api.post(f"/api/v1/revocations/reviews/{review_id}/decision",
                              headers=await caller(optout, org, "admin"), json={"decision": "revocation"})
    assert response.status_code == 200, response.text
    assert response.json()["superseded"] is True and response.json()["changed_scopes"] == []
    assert await suppressions_of(optout, org, phone) == {}
    assert await confirmations_of(optout, org, phone) == []


async def test_only_admins_decide_or_record(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    review_id = await held_review(optout, org, phone)
    staff = await caller(optout, org, "staff")
    decision = await api.post(f"/api/v1/revocations/reviews/{review_id}/decision", headers=staff,
                              json={"decision": "not_revocation"})
    manual = await api.post("/api/v1/revocations", headers=staff,
                            json={"phone": phone, "channel": "email", "evidence": "e-mail of 1 Dec"})
    assert (decision.status_code, manual.status_code) == (403, 403)
    assert await suppressions_of(optout, org, phone) == {"": "review_hold"}
    other = await writeback_org(optout)
    foreign = await api.post(f"/api/v1/revocations/reviews/{review_id}/decision",
                             headers=await caller(optout, other, "admin"), json={"decision": "not_revocation"})
    assert foreign.status_code == 404
    assert await suppressions_of(optout, org, phone) == {"": "review_hold"}


async def test_a_manual_revocation_is_recorded_with_its_evidence_and_written_back(
    optout: OptoutHarness, api: httpx.AsyncClient,
) -> None:
    org = await writeback_org(optout)
    phone = await member(optout, org)
    admin = await caller(optout, org, "admin")
    response = await api.post("/api/v1/revocations", headers=admin,
                              json={"phone": phone, "channel": "phone_call", "evidence": "Called 1 Dec, 10:05"})
    assert response.status_code == 200, response.text
    assert response.json() == {"phone": phone, "changed": True}
    assert await suppressions_of(optout, org, phone) == {"": "manual"}
    history = await api.get("/api/v1/suppressions/history", headers=admin, params={"phone": phone})
    assert [(h["source"], h["channel"], h["evidence"]) for h in history.json()] == [
        ("manual", "phone_call", "Called 1 Dec, 10:05")]
    jobs = await optout.fetch("SELECT source_text FROM imis_outbox WHERE org_id = $1 AND phone = $2", org.id, phone)
    assert len(jobs) == 1 and jobs[0]["source_text"].startswith("Revocation by phone call")
    assert await confirmations_of(optout, org, phone) == []  # only replies get a confirmation text

    again = await api.post("/api/v1/revocations", headers=admin,
                           json={"phone": phone, "channel": "email", "evidence": "and by e-mail"})
    assert again.json() == {"phone": phone, "changed": False}
    assert await count(optout, "SELECT count(*) FROM imis_outbox WHERE org_id = $1 AND phone = $2", org.id, phone) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"phone": "+14155550134", "channel": "carrier pigeon", "evidence": "x"}, "channel"),
    ({"phone": "+14155550134", "channel": "email", "evidence": "  "}, "evidence"),
    ({"phone": "not a number", "channel": "email", "evidence": "x"}, "phone"),
    ({"phone": "+14155550134", "channel": "email"}, "evidence"),
])
async def test_a_bad_manual_revocation_is_refused_and_changes_nothing(
    optout: OptoutHarness, api: httpx.AsyncClient, body: dict[str, str], field: str,
) -> None:
    org = await writeback_org(optout)
    response = await api.post("/api/v1/revocations", headers=await caller(optout, org, "admin"), json=body)
    assert response.status_code in (400, 422), response.text
    assert field in response.text
    assert await count(optout, "SELECT count(*) FROM suppressions WHERE org_id = $1", org.id) == 0


@pytest.mark.parametrize(("later", "held"), [(None, True), ("opt_in", False), ("opt_out", False)])
async def test_a_hold_follows_the_members_latest_word_within_a_batch(
    optout: OptoutHarness, later: str | None, held: bool,
) -> None:
    """hold_for_review runs after the batch's consent changes: a START or STOP that came after the doubtful
    reply (applied just before, in the same transaction) leaves no hold and no review."""
    org = await writeback_org(optout)
    phone = await member(optout, org)
    sid = fresh_sid()
    async with optout.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body,"
                           " kind, received_at) VALUES ($1, $2, $3, $3, $4, 'wrong number', 'other',"
                           " now() - interval '1 second')", org.id, sid, phone, org.sender)
        if later == "opt_in":
            await conn.execute("INSERT INTO consent_history (org_id, phone, action, source, keyword, actor, changed)"
                               " VALUES ($1, $2, 'opt_in', 'keyword', 'START', 'member', false)", org.id, phone)
        if later == "opt_out":
            await conn.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'keyword')",
                               org.id, phone)
        made = await hold_for_review(conn, [ReviewHold(org.id, sid, org.sender, "wrong number", "en")])
        assert made == (1 if held else 0)
        again = await hold_for_review(conn, [ReviewHold(org.id, sid, org.sender, "wrong number", "en")])
        assert again == 0  # a retried webhook adds nothing
    expected = {"": "review_hold"} if held else {"": "keyword"} if later == "opt_out" else {}
    assert await suppressions_of(optout, org, phone) == expected
