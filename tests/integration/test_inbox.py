"""Two-way texting on real PostgreSQL and Kafka: members' replies through the opt-out service into the inbox,
keyword answers, ``/api/v1/inbox``, and the dispatcher's one-off sender (with a recording Twilio fake: the
stand-in's own tests cover Twilio's side).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.bare_api import bare_api
from libs.common.twilio_errors import SendFailure
from libs.common.twilio_sender import Accepted, MessageSender
from services.api.routes import inbox, keyword_settings
from services.dispatcher.clock import SystemClock
from services.dispatcher.one_off import QUERIES as ONE_OFF_QUERIES
from services.dispatcher.one_off import OneOffSender, OneOffTuning
from services.dispatcher.pacing import SlidingWindow
from tests.conftest import eventually
from tests.integration.optout_harness import OptoutHarness, Org, fresh_sid, running_optout

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def optout(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool) as harness:
        yield harness


@pytest.fixture(scope="module")
async def api(db_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with db_pool.acquire() as conn:
        await inbox.QUERIES.check(conn)
        await keyword_settings.QUERIES.check(conn)
        await ONE_OFF_QUERIES.check(conn)
    async with bare_api(db_pool, inbox.router, keyword_settings.router) as client:
        yield client


class RecordingTwilio:
    """What the one-off sender asked Twilio for; ``known`` answers find_sent (a text an earlier attempt sent)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.known: str | None = None
        self.fail_with: SendFailure | None = None

    async def send(self, *, sender: str, to: str, body: str, validity_period_s: int | None = None) -> Accepted:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((sender, to, body))
        return Accepted(sid="SM" + uuid.uuid4().hex, status="queued", segments=1, price=None)

    def to(self, org: Org) -> list[tuple[str, str, str]]:
        """The texts sent from ``org``'s sender (the sender serves every organisation's queue)."""
        return [text for text in self.sent if text[0] == org.sender]

    async def find_sent(self, *, sender: str, to: str, body: str, since: datetime) -> str | None:
        return self.known


def one_off_sender(pool: asyncpg.Pool, twilio: RecordingTwilio, lease_s: float = 30.0) -> OneOffSender:
    async def twilio_for(_org: uuid.UUID) -> MessageSender:
        return twilio

    async def recent(_sender: str) -> list[tuple[float, int]]:
        return []

    return OneOffSender(pool, twilio_for, recent_sends=recent, lane_window=lambda _s: None, clock=SystemClock(),
                        process_id="test", tuning=OneOffTuning(lease_s=lease_s))


def fresh_phone() -> str:
    return f"+1415{random.randrange(200, 1000)}{random.randrange(10**4):04d}"


async def reply(optout: OptoutHarness, org: Org, body: str, phone: str, **extra: str) -> str:
    """Send an inbound webhook and wait until it is processed; returns its outcome."""
    sid = fresh_sid()
    response = await optout.inbound(org, body, phone, MessageSid=sid, **extra)
    assert response.status_code == 200, response.text

    async def outcome() -> str | None:
        return await optout.fetchval("SELECT outcome FROM webhook_requests WHERE org_id = $1"  # type: ignore[no-any-return]
                                     " AND params->>'MessageSid' = $2 AND state = 'done'", org.id, sid)

    return str(await eventually(outcome))


async def caller(optout: OptoutHarness, org: Org, role: str = "staff") -> dict[str, str]:
    key = await factories.make_api_key(optout.pool, org.id, name=f"{role}-{uuid.uuid4().hex[:6]}", role=role)
    return {"Authorization": f"Bearer {key}"}


async def one_offs(optout: OptoutHarness, org: Org, phone: str) -> list[dict[str, Any]]:
    rows = await optout.fetch("SELECT kind, body, state FROM one_off_texts WHERE org_id = $1 AND phone = $2"
                              " ORDER BY id", org.id, phone)
    return [dict(r) for r in rows]


async def answer_help(optout: OptoutHarness, api: httpx.AsyncClient, org: Org, **keywords: str) -> None:
    response = await api.put("/api/v1/settings/keywords", headers=await caller(optout, org, "admin"), json={
        "help_answered_by": "textpulse", "help_contact": "(617) 555-0100",
        "keywords": [{"keyword": k, "reply": v} for k, v in keywords.items()]})
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------------------------
# Replies into the inbox


async def test_a_reply_becomes_a_conversation_with_its_thread(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    assert await reply(optout, org, "Will there be parking?", phone) == "reply_stored"
    assert await reply(optout, org, "And food?", phone) == "reply_stored"
    staff = await caller(optout, org)

    page = (await api.get("/api/v1/inbox", headers=staff)).json()
    assert [(c["phone"], c["sender"], c["unread"], c["last_reply"]) for c in page["items"]] == [
        (phone, org.sender, 2, "And food?")]
    assert page["unread"] == 1
    conversation = page["items"][0]["id"]
    thread = (await api.get(f"/api/v1/inbox/{conversation}", headers=staff)).json()
    assert [(m["direction"], m["body"]) for m in thread["messages"]] == [
        ("in", "Will there be parking?"), ("in", "And food?")]
    assert thread["can_reply"] is True

    assert (await api.post(f"/api/v1/inbox/{conversation}/read", headers=staff)).json()["conversation"]["unread"] == 0
    assert (await api.get("/api/v1/inbox/unread", headers=staff)).json() == {"unread": 0}
    done = (await api.post(f"/api/v1/inbox/{conversation}/done", headers=staff)).json()["conversation"]
    assert done["state"] == "done"
    assert await reply(optout, org, "One more thing", phone) == "reply_stored"
    again = (await api.get(f"/api/v1/inbox/{conversation}", headers=staff)).json()["conversation"]
    assert (again["state"], again["unread"]) == ("open", 1)


async def test_filters_and_assignment(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await optout.new_org()
    first, second = fresh_phone(), fresh_phone()
    await reply(optout, org, "Hello", first)
    await reply(optout, org, "Hi there", second)
    staff = await caller(optout, org)
    user_id, _ = await factories.make_user(optout.pool, org.id)
    items = (await api.get("/api/v1/inbox", headers=staff)).json()["items"]
    by_phone = {c["phone"]: c["id"] for c in items}
    assigned = await api.post(f"/api/v1/inbox/{by_phone[first]}/assign", headers=staff, json={"user_id": str(user_id)})
    assert assigned.status_code == 200 and assigned.json()["conversation"]["assigned_to"] == str(user_id)
    await api.post(f"/api/v1/inbox/{by_phone[second]}/done", headers=staff)
    done = (await api.get("/api/v1/inbox?state=done", headers=staff)).json()["items"]
    assert [c["phone"] for c in done] == [second]
    unread = (await api.get("/api/v1/inbox?unread=true", headers=staff)).json()["items"]
    assert [c["phone"] for c in unread] == [first]

    stranger = await api.post(f"/api/v1/inbox/{by_phone[first]}/assign", headers=staff,
                              json={"user_id": str(uuid.uuid4())})
    assert stranger.status_code == 422 and stranger.json()["code"] == "user_unknown"
    assert (await api.get("/api/v1/inbox?mine=true", headers=staff)).status_code == 422  # an API key is no user
    other = await optout.new_org()
    assert (await api.get(f"/api/v1/inbox/{by_phone[first]}", headers=await caller(optout, other))).status_code == 404


# ---------------------------------------------------------------------------------------------
# Keywords


async def test_help_is_answered_once_by_the_side_settings_name(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    assert await reply(optout, org, "HELP", phone) == "help"
    assert await one_offs(optout, org, phone) == []  # Twilio answers by default
    await answer_help(optout, api, org)
    assert await reply(optout, org, "help", phone) == "help"
    # Advanced Opt-Out declared (and answered) this one itself: no second answer from us.
    assert await reply(optout, org, "AIDE", phone, OptOutType="HELP") == "help"
    texts = await one_offs(optout, org, phone)
    assert len(texts) == 1 and texts[0]["kind"] == "keyword_reply"
    assert "Reply STOP to opt out" in texts[0]["body"] and "(617) 555-0100" in texts[0]["body"]
    assert (await api.get("/api/v1/inbox", headers=await caller(optout, org))).json()["items"] == []

    twilio = RecordingTwilio()
    sender = one_off_sender(optout.pool, twilio)
    await sender.pass_once()
    await sender.pass_once()
    assert [(s, to) for s, to, _ in twilio.to(org)] == [(org.sender, phone)]


async def test_an_organisations_own_keyword_gets_its_reply_not_a_conversation(
    optout: OptoutHarness, api: httpx.AsyncClient,
) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    await answer_help(optout, api, org, RENEW="Renew at https://example.org/renew")
    assert await reply(optout, org, " renew ", phone) == "reply_stored"
    assert await one_offs(optout, org, phone) == [
        {"kind": "keyword_reply", "body": "Renew at https://example.org/renew", "state": "pending"}]
    assert (await api.get("/api/v1/inbox", headers=await caller(optout, org))).json()["items"] == []


@pytest.mark.parametrize(("keyword", "code"), [("STOP", "keyword_reserved"), ("two words", "keyword_invalid")])
async def test_a_keyword_that_cannot_be_one_is_refused(optout: OptoutHarness, api: httpx.AsyncClient, keyword: str,
                                                      code: str) -> None:
    org = await optout.new_org()
    response = await api.put("/api/v1/settings/keywords", headers=await caller(optout, org, "admin"), json={
        "help_answered_by": "twilio", "keywords": [{"keyword": keyword, "reply": "x"}]})
    assert response.status_code == 422 and response.json()["code"] == code
    assert (await api.get("/api/v1/settings/keywords", headers=await caller(optout, org))).json()["keywords"] == []


# ---------------------------------------------------------------------------------------------
# Staff replies and the one-off sender


async def conversation_of(optout: OptoutHarness, api: httpx.AsyncClient, org: Org, phone: str) -> int:
    assert await reply(optout, org, "Can I bring a guest?", phone) == "reply_stored"
    items = (await api.get("/api/v1/inbox", headers=await caller(optout, org))).json()["items"]
    return int(next(c["id"] for c in items if c["phone"] == phone))


async def test_a_staff_reply_is_sent_once(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    conversation = await conversation_of(optout, api, org, phone)
    staff = await caller(optout, org)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.post(f"/api/v1/inbox/{conversation}/replies", headers=staff | key, json={"body": "Yes, one."})
    retried = await api.post(f"/api/v1/inbox/{conversation}/replies", headers=staff | key, json={"body": "Yes, one."})
    assert first.status_code == retried.status_code == 202, first.text
    assert first.json()["id"] == retried.json()["id"]

    twilio = RecordingTwilio()
    sender = one_off_sender(optout.pool, twilio)
    await sender.pass_once()
    await sender.pass_once()
    assert twilio.to(org) == [(org.sender, phone, "Yes, one.")]
    ledger = await optout.fetch("SELECT state, to_number, one_off_id FROM send_ledger WHERE org_id = $1"
                                " AND one_off_id IS NOT NULL", org.id)
    assert [(r["state"], r["to_number"], r["one_off_id"]) for r in ledger] == [("sent", phone, first.json()["id"])]
    thread = (await api.get(f"/api/v1/inbox/{conversation}", headers=staff)).json()["messages"]
    assert [(m["direction"], m["kind"], m["state"]) for m in thread] == [("in", None, None),
                                                                           ("out", "staff_reply", "sent")]


async def test_a_claim_left_by_a_crash_is_looked_up_at_twilio_not_sent_again(
    optout: OptoutHarness, api: httpx.AsyncClient,
) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    conversation = await conversation_of(optout, api, org, phone)
    response = await api.post(f"/api/v1/inbox/{conversation}/replies", json={"body": "See you there"},
                              headers=await caller(optout, org) | {"Idempotency-Key": str(uuid.uuid4())})
    text_id = response.json()["id"]
    async with optout.pool.acquire() as conn:  # an attempt that claimed it, then died before its outcome
        assert await ONE_OFF_QUERIES.fetchrow(conn, "claim", id=text_id, lease_s=30.0, process_id="dead") is not None
        await conn.execute("UPDATE one_off_texts SET claimed_at = now() - interval '1 minute' WHERE id = $1", text_id)
    twilio = RecordingTwilio()
    twilio.known = "SM" + uuid.uuid4().hex
    await one_off_sender(optout.pool, twilio).pass_once()
    assert twilio.to(org) == []
    row = await optout.fetch("SELECT state, message_sid FROM one_off_texts WHERE id = $1", text_id)
    assert (row[0]["state"], row[0]["message_sid"]) == ("sent", twilio.known)


async def test_a_suppressed_member_cannot_be_replied_to(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    conversation = await conversation_of(optout, api, org, phone)
    staff = await caller(optout, org)
    queued = await api.post(f"/api/v1/inbox/{conversation}/replies", json={"body": "Queued before the STOP"},
                            headers=staff | {"Idempotency-Key": str(uuid.uuid4())})
    assert queued.status_code == 202
    assert await reply(optout, org, "STOP", phone) == "opted_out"

    thread = (await api.get(f"/api/v1/inbox/{conversation}", headers=staff)).json()
    assert thread["can_reply"] is False and "STOP" in thread["cannot_reply_because"]
    refused = await api.post(f"/api/v1/inbox/{conversation}/replies", json={"body": "Hello?"},
                             headers=staff | {"Idempotency-Key": str(uuid.uuid4())})
    assert refused.status_code == 409 and refused.json()["code"] == "recipient_suppressed"

    twilio = RecordingTwilio()
    await one_off_sender(optout.pool, twilio).pass_once()  # the one queued before the STOP is checked again
    assert twilio.to(org) == []
    assert [t["state"] for t in await one_offs(optout, org, phone)] == ["suppressed"]


@pytest.mark.parametrize("body", ["", "x" * 1601])
async def test_a_reply_that_cannot_be_sent_is_refused(optout: OptoutHarness, api: httpx.AsyncClient,
                                                     body: str) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    conversation = await conversation_of(optout, api, org, phone)
    response = await api.post(f"/api/v1/inbox/{conversation}/replies", json={"body": body},
                              headers=await caller(optout, org) | {"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 422
    assert await one_offs(optout, org, phone) == []


async def test_a_revocation_confirmation_is_the_one_text_a_suppressed_number_gets(optout: OptoutHarness) -> None:
    org = await optout.new_org()
    await optout.pool.execute("UPDATE organisations SET revocation_confirmation = true WHERE id = $1", org.id)
    phone = fresh_phone()
    assert await reply(optout, org, "please stop texting me", phone) == "revoked"
    twilio = RecordingTwilio()
    sender = one_off_sender(optout.pool, twilio)
    await sender.pass_once()
    await sender.pass_once()
    assert [(s, to) for s, to, _ in twilio.to(org)] == [(org.sender, phone)]
    states = await optout.fetch("SELECT state FROM revocation_confirmations WHERE org_id = $1 AND phone = $2",
                                org.id, phone)
    assert [r["state"] for r in states] == ["sent"]


async def test_a_confirmation_is_cancelled_when_the_member_opted_back_in_first(optout: OptoutHarness) -> None:
    org = await optout.new_org()
    await optout.pool.execute("UPDATE organisations SET revocation_confirmation = true WHERE id = $1", org.id)
    phone = fresh_phone()
    assert await reply(optout, org, "please stop texting me", phone) == "revoked"
    assert await reply(optout, org, "START", phone) == "opted_in"
    twilio = RecordingTwilio()
    await one_off_sender(optout.pool, twilio).pass_once()
    assert twilio.to(org) == []
    states = await optout.fetch("SELECT state FROM revocation_confirmations WHERE org_id = $1 AND phone = $2",
                                org.id, phone)
    assert [r["state"] for r in states] == ["cancelled"]


class SteppedClock:
    """A clock that moves only when the sender sleeps, and says how long it slept."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def wait(self, event: Any, timeout: float) -> None:
        await self.sleep(timeout)


async def test_a_staff_reply_waits_for_room_in_the_senders_lane(optout: OptoutHarness, api: httpx.AsyncClient) -> None:
    org = await optout.new_org()
    phone = fresh_phone()
    conversation = await conversation_of(optout, api, org, phone)
    response = await api.post(f"/api/v1/inbox/{conversation}/replies", json={"body": "Noted, thanks."},
                              headers=await caller(optout, org) | {"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 202
    clock = SteppedClock()
    lane = SlidingWindow(3.0)
    lane.record(clock.now, 3)  # the campaign on this sender has just used the whole second

    async def twilio_for(_org: uuid.UUID) -> MessageSender:
        return twilio

    asked: list[str] = []

    async def recent(sender: str) -> list[tuple[float, int]]:  # other senders of the shared queue come here
        asked.append(sender)
        return []

    twilio = RecordingTwilio()
    windows = {org.sender: lane}
    sender = OneOffSender(optout.pool, twilio_for, recent_sends=recent, lane_window=windows.get, clock=clock,
                          process_id="test")
    await sender.pass_once()
    assert org.sender not in asked  # the lane's window is used, not the ledger's
    assert twilio.to(org) == [(org.sender, phone, "Noted, thanks.")]
    assert clock.slept and sum(clock.slept) == pytest.approx(1.0)
    assert lane.room(clock.now) == 2.0  # the text counts in the campaign's window
