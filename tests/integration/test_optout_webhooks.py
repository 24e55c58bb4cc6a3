"""Twilio's webhooks into the opt-out service, on real PostgreSQL and Kafka.

Refusals and accepted messages are tables of cases on one running service (optout_harness); the
status storm, reconciliation and 21610 have their own tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest

from harness.credentials import seal
from libs.common.secret_store import AUTH_TOKEN, WEBHOOK_SHARED_KEY_SECRET
from services.optout.processing import WebhookProcessor
from tests.conftest import eventually
from tests.integration.optout_harness import (
    PUBLIC_BASE,
    OptoutHarness,
    Org,
    fresh_phone,
    fresh_shared_key_id,
    fresh_sid,
    running_optout,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def optout(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool) as harness:
        yield harness


@pytest.fixture(scope="module")
async def org(optout: OptoutHarness) -> Org:
    return await optout.new_org()


# ---------------------------------------------------------------------------------------------
# Refused: nothing stored, one log line with the reason


@dataclass(frozen=True)
class Refusal:
    label: str
    send: Callable[[OptoutHarness, Org], object]  # returns the awaitable response
    status: int
    reason: str


def _form(params: dict[str, str]) -> bytes:
    return urlencode(params).encode()


def _forged_with_other_token(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "STOP", fresh_phone())
    url = PUBLIC_BASE + "/twilio/inbound"
    return h.post("/twilio/inbound", content=_form(params), signature=h.sign(url, params, "f" * 32))


def _replayed_on_another_body(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "hello", fresh_phone())
    signature = h.sign(PUBLIC_BASE + "/twilio/inbound", params, org.auth_token)
    return h.post("/twilio/inbound", content=_form({**params, "Body": "STOP"}), signature=signature)


def _replayed_on_the_other_endpoint(h: OptoutHarness, org: Org) -> object:
    params = h.status_params(org, fresh_sid(), "delivered")
    signature = h.sign(PUBLIC_BASE + "/twilio/status", params, org.auth_token)
    return h.post("/twilio/inbound", content=_form(params), signature=signature)


def _query_dropped(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "STOP", fresh_phone())
    signature = h.sign(PUBLIC_BASE + "/twilio/inbound?tenant=acme", params, org.auth_token)
    return h.post("/twilio/inbound", content=_form(params), signature=signature)


def _signed_over_http(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "STOP", fresh_phone())
    url = PUBLIC_BASE.replace("https://", "http://") + "/twilio/inbound"
    return h.post("/twilio/inbound", content=_form(params), signature=h.sign(url, params, org.auth_token))


def _unsigned(h: OptoutHarness, org: Org) -> object:
    return h.post("/twilio/inbound", content=_form(h.inbound_params(org, "STOP", fresh_phone())), signature=None)


def _unknown_account(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "STOP", fresh_phone(), AccountSid=fresh_sid("AC"))
    return h.post("/twilio/inbound", content=_form(params),
                  signature=h.sign(PUBLIC_BASE + "/twilio/inbound", params, org.auth_token))


def _no_account(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "STOP", fresh_phone())
    del params["AccountSid"]
    return h.post("/twilio/inbound", content=_form(params),
                  signature=h.sign(PUBLIC_BASE + "/twilio/inbound", params, org.auth_token))


def _huge_body(h: OptoutHarness, org: Org) -> object:
    params = h.inbound_params(org, "x" * 70_000, fresh_phone())  # correctly signed, still refused
    return h.post("/twilio/inbound", content=_form(params),
                  signature=h.sign(PUBLIC_BASE + "/twilio/inbound", params, org.auth_token))


def _not_utf8(h: OptoutHarness, org: Org) -> object:
    body = _form(h.inbound_params(org, "STOP", fresh_phone())) + b"&Extra=%FF%FE"
    return h.post("/twilio/inbound", content=body, signature="anything")


def _raw_bytes(h: OptoutHarness, org: Org) -> object:
    body = _form(h.inbound_params(org, "STOP", fresh_phone())) + b"&Extra=\xe9t\xe9"
    return h.post("/twilio/status", content=body, signature="anything")


def _json_body(h: OptoutHarness, org: Org) -> object:
    return h.post("/twilio/status", content=b'{"MessageSid": "SM1"}', signature="x", content_type="application/json")


REFUSALS = [
    Refusal("missing signature", _unsigned, 403, "signature_missing"),
    Refusal("forged with another token", _forged_with_other_token, 403, "signature_invalid"),
    Refusal("signature replayed on another body", _replayed_on_another_body, 403, "signature_invalid"),
    Refusal("status signature replayed on inbound", _replayed_on_the_other_endpoint, 403, "signature_invalid"),
    Refusal("signed URL had a query we did not get", _query_dropped, 403, "signature_invalid"),
    Refusal("signed over http, configured https", _signed_over_http, 403, "signature_invalid"),
    Refusal("unknown AccountSid", _unknown_account, 403, "account_unknown"),
    Refusal("no AccountSid", _no_account, 403, "account_missing"),
    Refusal("huge body", _huge_body, 413, "body_too_large"),
    Refusal("percent-encoded non-UTF-8", _not_utf8, 400, "body_not_utf8"),
    Refusal("raw non-ASCII bytes", _raw_bytes, 400, "body_not_utf8"),
    Refusal("JSON instead of a form", _json_body, 415, "body_not_form"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.label for c in REFUSALS])
async def test_refused_requests_store_nothing(
    optout: OptoutHarness, org: Org, case: Refusal, caplog: pytest.LogCaptureFixture
) -> None:
    before = await optout.webhook_count(org)
    total_before = await optout.fetchval("SELECT count(*) FROM webhook_requests")
    with caplog.at_level(logging.WARNING, logger="services.optout.webhooks"):
        response = await case.send(optout, org)  # type: ignore[misc]
    assert response.status_code == case.status
    assert await optout.webhook_count(org) == before
    assert await optout.fetchval("SELECT count(*) FROM webhook_requests") == total_before
    refusals = [r for r in caplog.records if r.getMessage() == "webhook.refused"]
    assert [r.reason for r in refusals] == [case.reason]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Accepted inbound messages: what each one does


@dataclass(frozen=True)
class Inbound:
    label: str
    body: str
    outcome: str
    suppressed: bool
    extra: tuple[tuple[str, str], ...] = ()
    phone: str | None = None  # as sent in From; None: a fresh E.164 number


INBOUND = [
    Inbound("STOP", "STOP", "opted_out", True),
    Inbound("stop, padded and lower case", "  stop \n", "opted_out", True),
    Inbound("REVOKE (FCC 2025)", "REVOKE", "opted_out", True),
    # Twilio's filter lets these through; the FCC reads the first as a revocation (services/optout/revocation.py).
    Inbound("stop in a few words", "Stop please", "revoked", True),
    Inbound("a sentence with stop in it", "Stop by the booth at 3", "reply_stored", False),
    Inbound("a revocation from a short code", "please stop texting me", "phone_invalid", False, phone="12345"),
    Inbound("a doubtful reply from a short code", "wrong number", "phone_invalid", False, phone="12345"),
    Inbound("HELP", "HELP", "help", False),
    Inbound("YES to a toll-free number", "YES", "reply_stored", False),
    Inbound("Advanced Opt-Out keyword", "ARRET", "opted_out", True, (("OptOutType", "STOP"),)),
    Inbound("a national number in From", "STOP", "opted_out", True, phone="4155550177"),
    Inbound("a short code in From", "STOP", "phone_invalid", False, phone="12345"),
]


@pytest.mark.parametrize("case", INBOUND, ids=[c.label for c in INBOUND])
async def test_inbound_messages(optout: OptoutHarness, org: Org, case: Inbound) -> None:
    phone = case.phone or fresh_phone()
    sid = fresh_sid()
    response = await optout.inbound(org, case.body, phone, MessageSid=sid, **dict(case.extra))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'

    async def processed() -> asyncpg.Record | None:
        rows = await optout.fetch(
            "SELECT w.state, w.outcome, i.kind, i.body, i.phone FROM webhook_requests w "
            "JOIN inbound_messages i ON i.webhook_request_id = w.id WHERE i.message_sid = $1 AND w.state <> 'pending'",
            sid)
        return rows[0] if rows else None

    row = await eventually(processed, timeout=30)
    assert (row["state"], row["outcome"], row["body"]) == ("done", case.outcome, case.body)
    e164 = row["phone"]
    scopes = await optout.scopes_suppressed(org, e164) if e164 else set()
    assert scopes == ({"", org.sender} if case.suppressed else set())


async def test_stop_is_suppressed_and_announced(optout: OptoutHarness, org: Org) -> None:
    """How soon is bench.webhooks' figure (STOPs applied after the load); here: that it is, in both scopes."""
    phone = fresh_phone()  # never texted by anyone: still suppressed
    sid = fresh_sid()
    response = await optout.inbound(org, "Stop", phone, MessageSid=sid)
    assert response.status_code == 200
    await eventually(lambda: optout.scopes_suppressed(org, phone), timeout=30, interval=0.01)
    assert await optout.scopes_suppressed(org, phone) == {"", org.sender}

    events = await eventually(lambda: len(optout.events.consent(phone)) == 2 and optout.events.consent(phone),
                              timeout=10)
    assert {(e["sender"], e["action"], e["source"], e["message_sid"]) for e in events} == {
        (None, "opt_out", "keyword", sid), (org.sender, "opt_out", "keyword", sid),
    }
    history = await optout.fetch(
        "SELECT scope, action, source, keyword, body, actor, changed FROM consent_history "
        "WHERE org_id = $1 AND phone = $2 ORDER BY scope", org.id, phone)
    assert [tuple(r) for r in history] == [
        ("", "opt_out", "keyword", "STOP", "Stop", "member", True),
        (org.sender, "opt_out", "keyword", "STOP", "Stop", "member", True),
    ]


async def test_start_lifts_the_suppression_and_is_recorded(optout: OptoutHarness, org: Org) -> None:
    phone = fresh_phone()
    await optout.inbound(org, "STOP", phone)
    await eventually(lambda: optout.scopes_suppressed(org, phone), timeout=5)
    await optout.inbound(org, "start", phone)
    await eventually(lambda: optout.fetchval(
        "SELECT count(*) = 4 FROM consent_history WHERE org_id = $1 AND phone = $2", org.id, phone), timeout=5)
    assert await optout.scopes_suppressed(org, phone) == set()
    events = await eventually(lambda: len(optout.events.consent(phone)) == 4 and optout.events.consent(phone),
                              timeout=10)
    assert [e["action"] for e in events] == ["opt_out", "opt_out", "opt_in", "opt_in"]  # in order, keyed by phone


async def test_a_stop_through_a_messaging_service_suppresses_the_service(optout: OptoutHarness, org: Org) -> None:
    phone = fresh_phone()
    await optout.inbound(org, "STOP", phone, MessagingServiceSid=org.messaging_service_sid, OptOutType="STOP")
    await eventually(lambda: optout.scopes_suppressed(org, phone), timeout=5)
    assert await optout.scopes_suppressed(org, phone) == {"", org.messaging_service_sid}


async def test_a_retried_webhook_is_applied_once(optout: OptoutHarness, org: Org) -> None:
    phone = fresh_phone()
    params = optout.inbound_params(org, "STOP", phone)
    first = await optout.signed(org, "/twilio/inbound", params)
    second = await optout.signed(org, "/twilio/inbound", params)  # a verbatim repeat, as Twilio retries
    assert first.status_code == second.status_code == 200
    await eventually(lambda: optout.fetchval(
        "SELECT count(*) = 2 FROM webhook_requests WHERE params->>'MessageSid' = $1 AND state = 'done'",
        params["MessageSid"]), timeout=5)
    outcomes = await optout.fetch("SELECT outcome FROM webhook_requests WHERE params->>'MessageSid' = $1 ORDER BY id",
                                  params["MessageSid"])
    assert [r["outcome"] for r in outcomes] == ["opted_out", "duplicate"]
    assert await optout.fetchval("SELECT count(*) FROM consent_history WHERE phone = $1", phone) == 2
    assert await optout.fetchval("SELECT count(*) FROM inbound_messages WHERE phone = $1", phone) == 1


async def test_a_reply_shows_on_the_run_that_texted_the_number(optout: OptoutHarness, org: Org) -> None:
    phone = fresh_phone()
    await optout.add_ledger_row(org, phone)
    sid = fresh_sid()
    await optout.inbound(org, "See you there!", phone, MessageSid=sid)
    row = await eventually(lambda: optout.fetch("SELECT run_id, kind FROM inbound_messages WHERE message_sid = $1",
                                                sid), timeout=5)
    assert (row[0]["run_id"], row[0]["kind"]) == (org.run_id, "other")
    assert await optout.scopes_suppressed(org, phone) == set()


async def test_a_reply_shows_on_the_run_that_texted_the_number_not_a_later_run_that_did_not(
    optout: OptoutHarness, org: Org,
) -> None:
    phone = fresh_phone()
    await optout.add_ledger_row(org, phone)
    async with optout.pool.acquire() as conn:  # a later run claimed the number but never texted it
        later = await conn.fetchval(
            """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted)
               SELECT org_id, campaign_id, now() + interval '1 day', 'sending', 1 FROM campaign_runs WHERE id = $1
               RETURNING id""", org.run_id)
        await conn.execute(
            "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_at) "
            "VALUES ($1, $2, $3, $4, $5, 1, 'suppressed', now() + interval '1 hour')",
            later, uuid.uuid4(), org.id, org.sender, phone)
    sid = fresh_sid()
    await optout.inbound(org, "STOP", phone, MessageSid=sid)
    row = await eventually(lambda: optout.fetch("SELECT run_id FROM inbound_messages WHERE message_sid = $1", sid),
                           timeout=5)
    assert row[0]["run_id"] == org.run_id


async def test_a_signed_request_missing_fields_is_kept_and_marked_failed(optout: OptoutHarness, org: Org) -> None:
    params = optout.status_params(org, fresh_sid(), "delivered")
    del params["MessageSid"], params["SmsSid"]
    response = await optout.signed(org, "/twilio/status", params, query="campaign=42")
    assert response.status_code == 200
    row = await eventually(lambda: optout.fetch(
        "SELECT state, outcome, error, url FROM webhook_requests WHERE org_id = $1 AND params->>'To' = $2 "
        "AND state <> 'pending'", org.id, params["To"]), timeout=5)
    assert (row[0]["state"], row[0]["outcome"]) == ("failed", "field_missing")
    assert row[0]["url"] == PUBLIC_BASE + "/twilio/status?campaign=42"


# ---------------------------------------------------------------------------------------------
# Status callbacks


async def test_a_status_storm_leaves_every_row_in_its_final_state(optout: OptoutHarness, org: Org) -> None:
    rng = random.Random(9)
    finals = [("delivered", None), ("undelivered", "30003"), ("failed", "30007"), ("sent", None), ("failed", "30008")]
    expected: dict[str, tuple[str, int | None, Decimal | None]] = {}
    callbacks: list[tuple[str, str, str | None]] = []
    for n in range(40):
        sid = await optout.add_ledger_row(org, fresh_phone(), status="queued" if n % 2 else None)
        final, error = finals[n % len(finals)]
        path = ["queued", "sending", "sent"] + ([final] if final != "sent" else [])
        sequence = [(sid, s, None) for s in path[:-1]] + [(sid, path[-1], error)]
        callbacks += [c for c in sequence for _ in range(rng.randint(1, 3))]  # duplicates
        fee = Decimal("0.00100") if (final, error) == ("failed", "30007") else None
        expected[sid] = (final, int(error) if error else None, fee)
    rng.shuffle(callbacks)  # and out of order
    gate = asyncio.Semaphore(16)

    async def send(sid: str, status: str, error: str | None) -> httpx.Response:
        async with gate:
            return await optout.status(org, sid, status, error)

    responses = await asyncio.gather(*(send(*c) for c in callbacks))
    assert {r.status_code for r in responses} == {200} and all(r.content == b"" for r in responses)
    await eventually(lambda: optout.settled(org), timeout=15)

    rows = await optout.fetch("SELECT message_sid, twilio_status, error_code, price FROM send_ledger "
                              "WHERE message_sid = ANY($1::text[])", list(expected))
    assert {r["message_sid"]: (r["twilio_status"], r["error_code"], r["price"]) for r in rows} == expected
    distinct = {(sid, status, error or "") for sid, status, error in callbacks}
    stored = await optout.fetchval("SELECT count(*) FROM status_callbacks WHERE message_sid = ANY($1::text[])",
                                   list(expected))
    assert stored == len(distinct)
    await eventually(lambda: sum(len(optout.events.status(sid)) for sid in expected) == len(distinct), timeout=10)
    delivered = next(sid for sid, (final, _, _) in expected.items() if final == "delivered")
    assert {e["status"] for e in optout.events.status(delivered)} == {"queued", "sending", "sent", "delivered"}


async def test_a_callback_for_an_unknown_sid_is_stored_then_reconciled(optout: OptoutHarness, org: Org) -> None:
    sid = fresh_sid()
    response = await optout.status(org, sid, "delivered")
    assert response.status_code == 200
    row = await eventually(lambda: optout.fetch(
        "SELECT w.state, w.outcome, c.matched FROM status_callbacks c JOIN webhook_requests w "
        "ON w.id = c.webhook_request_id WHERE c.message_sid = $1 AND w.state <> 'pending'", sid), timeout=5)
    assert (row[0]["state"], row[0]["outcome"], row[0]["matched"]) == ("done", "ledger_missing", False)
    assert await optout.fetchval("SELECT attempts FROM webhook_requests WHERE params->>'MessageSid' = $1", sid) == 1

    await optout.add_ledger_row(org, fresh_phone(), sid)  # the dispatcher records the SID late
    await eventually(lambda: optout.fetchval(
        "SELECT twilio_status = 'delivered' FROM send_ledger WHERE message_sid = $1", sid), timeout=5)
    assert await optout.fetchval("SELECT matched AND applied FROM status_callbacks WHERE message_sid = $1", sid)


async def test_a_21610_callback_suppresses_the_number(optout: OptoutHarness, org: Org) -> None:
    phone = fresh_phone()
    sid = await optout.add_ledger_row(org, phone)
    await optout.status(org, sid, "failed", "21610", To=phone)
    await eventually(lambda: optout.scopes_suppressed(org, phone), timeout=5)
    assert await optout.scopes_suppressed(org, phone) == {"", org.sender}
    sources = await optout.fetch("SELECT source, actor, message_sid FROM consent_history WHERE phone = $1", phone)
    assert {tuple(r) for r in sources} == {("twilio_21610", "twilio", sid)}
    assert await optout.fetchval("SELECT twilio_status FROM send_ledger WHERE message_sid = $1", sid) == "failed"


async def test_a_30032_callback_marks_the_sender_unverified_and_pauses_its_run(
    optout: OptoutHarness, org: Org
) -> None:
    sid = await optout.add_ledger_row(org, fresh_phone())
    await optout.status(org, sid, "failed", "30032")
    await eventually(lambda: optout.fetchval("SELECT state = 'paused' FROM campaign_runs WHERE id = $1", org.run_id),
                     timeout=5)
    assert await optout.fetchval("SELECT verification FROM senders WHERE org_id = $1", org.id) == "pending"
    reason = await optout.fetchval("SELECT state_reason FROM campaign_runs WHERE id = $1", org.run_id)
    assert reason.startswith("twilio_30032")


async def test_an_unreachable_number_in_a_callback_is_remembered_as_bad(optout: OptoutHarness, org: Org) -> None:
    phone = fresh_phone()
    sid = await optout.add_ledger_row(org, phone)
    await optout.status(org, sid, "undelivered", "30005")
    await eventually(lambda: optout.fetchval("SELECT error_code FROM bad_numbers WHERE org_id = $1 AND phone = $2",
                                             org.id, phone), timeout=5)
    assert await optout.fetchval("SELECT error_code FROM bad_numbers WHERE phone = $1", phone) == 30005
    await optout.status(org, sid, "undelivered", "30005")  # a repeat changes nothing
    assert await optout.fetchval("SELECT count(*) FROM bad_numbers WHERE phone = $1", phone) == 1


async def test_a_row_that_keeps_failing_is_isolated_retried_then_failed(optout: OptoutHarness, org: Org) -> None:
    # A database error only this message triggers (a test-only trigger): the rows around it still go through.
    async with optout.pool.acquire() as conn:
        await conn.execute("""
            CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.body = 'POISON' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER test_poison BEFORE INSERT ON inbound_messages FOR EACH ROW EXECUTE FUNCTION test_poison();
        """)
    try:
        good, bad = fresh_phone(), fresh_phone()
        await asyncio.gather(optout.inbound(org, "STOP", good), optout.inbound(org, "POISON", bad),
                             optout.inbound(org, "Hello", good))
        await eventually(lambda: optout.scopes_suppressed(org, good), timeout=5)
        row = await eventually(lambda: optout.fetch(
            "SELECT state, outcome, attempts, error FROM webhook_requests WHERE params->>'From' = $1 "
            "AND state <> 'pending'", bad), timeout=10)
        assert (row[0]["state"], row[0]["outcome"], row[0]["attempts"]) == ("failed", "processing_failed", 5)
        assert "poisoned" in row[0]["error"]
        outcomes = await optout.fetch("SELECT outcome FROM webhook_requests WHERE params->>'From' = $1", good)
        assert sorted(r["outcome"] for r in outcomes) == ["opted_out", "reply_stored"]
    finally:
        async with optout.pool.acquire() as conn:
            await conn.execute("DROP TRIGGER test_poison ON inbound_messages; DROP FUNCTION test_poison()")


async def test_a_rotated_auth_token_is_honoured_at_once(optout: OptoutHarness) -> None:
    org = await optout.new_org()
    assert (await optout.inbound(org, "hello", fresh_phone())).status_code == 200  # the account is cached now
    rotated = Org(**{**org.__dict__, "auth_token": "0123456789abcdef" * 2})
    async with optout.pool.acquire() as conn:
        await conn.execute("UPDATE sms_accounts SET auth_token = $1 WHERE org_id = $2",
                           await seal(conn, org.id, AUTH_TOKEN, rotated.auth_token), org.id)
    assert (await optout.inbound(rotated, "hello", fresh_phone())).status_code == 200
    assert (await optout.inbound(org, "hello", fresh_phone())).status_code == 403  # the old token is refused


# ---------------------------------------------------------------------------------------------
# Signed with a SharedKey (X-Twilio-Webhooks-Signature-Settings) instead of the auth token


@pytest.fixture(scope="module")
async def keyed_org(optout: OptoutHarness) -> Org:
    return await optout.new_org(shared_key=True)


@pytest.mark.parametrize("algorithm", ["HMAC_SHA256", "HMAC_SHA1"])
async def test_a_stop_and_a_status_callback_signed_with_the_shared_key_are_applied(
    optout: OptoutHarness, keyed_org: Org, algorithm: str
) -> None:
    phone = fresh_phone()
    stop = await optout.shared(keyed_org, "/twilio/inbound", optout.inbound_params(keyed_org, "STOP", phone),
                               algorithm=algorithm)
    assert stop.status_code == 200
    await eventually(lambda: optout.scopes_suppressed(keyed_org, phone), timeout=5)
    assert await optout.scopes_suppressed(keyed_org, phone) == {"", keyed_org.sender}

    sid = await optout.add_ledger_row(keyed_org, fresh_phone(), status="sent")
    callback = await optout.shared(keyed_org, "/twilio/status", optout.status_params(keyed_org, sid, "delivered"),
                                   algorithm=algorithm)
    assert callback.status_code == 200
    await eventually(lambda: optout.fetchval(
        "SELECT twilio_status = 'delivered' FROM send_ledger WHERE message_sid = $1", sid), timeout=5)
    # The auth token still signs for the same account: Twilio may sign some webhooks each way.
    assert (await optout.inbound(keyed_org, "hello", fresh_phone())).status_code == 200


def _key_of_another_account(h: OptoutHarness, org: Org, keyed: Org) -> object:
    return h.shared(keyed, "/twilio/inbound", h.inbound_params(keyed, "STOP", fresh_phone()),
                    key_id=fresh_shared_key_id(), secret=keyed.shared_key_secret)


def _wrong_secret(h: OptoutHarness, org: Org, keyed: Org) -> object:
    return h.shared(keyed, "/twilio/inbound", h.inbound_params(keyed, "STOP", fresh_phone()), secret="s" * 43)


def _auth_token_under_a_shared_key_header(h: OptoutHarness, org: Org, keyed: Org) -> object:
    return h.shared(keyed, "/twilio/inbound", h.inbound_params(keyed, "STOP", fresh_phone()),
                    algorithm="HMAC_SHA1", secret=keyed.auth_token)


def _sha1_claimed_as_sha256(h: OptoutHarness, org: Org, keyed: Org) -> object:
    return h.shared(keyed, "/twilio/inbound", h.inbound_params(keyed, "STOP", fresh_phone()),
                    algorithm="HMAC_SHA1", header_algorithm="HMAC_SHA256")


def _unsupported_algorithm(h: OptoutHarness, org: Org, keyed: Org) -> object:
    return h.shared(keyed, "/twilio/inbound", h.inbound_params(keyed, "STOP", fresh_phone()),
                    header_algorithm="HMAC_SHA512")


def _header_on_an_org_without_a_shared_key(h: OptoutHarness, org: Org, keyed: Org) -> object:
    return h.shared(org, "/twilio/inbound", h.inbound_params(org, "STOP", fresh_phone()),
                    key_id=fresh_shared_key_id(), secret=org.auth_token)


def _status_signed_for_inbound(h: OptoutHarness, org: Org, keyed: Org) -> object:
    params = h.status_params(keyed, fresh_sid(), "delivered")
    assert keyed.shared_key_secret is not None
    signature = h.sign(PUBLIC_BASE + "/twilio/status", params, keyed.shared_key_secret, "HMAC_SHA256")
    return h.post("/twilio/inbound", content=_form(params), signature=signature,
                  settings=f"key={keyed.shared_key_id},algorithm=HMAC_SHA256")


SHARED_KEY_REFUSALS = [
    ("a key id the organisation did not configure", _key_of_another_account, "shared_key_unknown"),
    ("the wrong secret", _wrong_secret, "signature_invalid"),
    ("the auth token under a SharedKey header", _auth_token_under_a_shared_key_header, "signature_invalid"),
    ("HMAC-SHA1 claimed as HMAC-SHA256", _sha1_claimed_as_sha256, "signature_invalid"),
    ("an algorithm the SDK does not know", _unsupported_algorithm, "signature_algorithm_unsupported"),
    ("the header on an organisation without a SharedKey", _header_on_an_org_without_a_shared_key,
     "shared_key_not_configured"),
    ("a status signature replayed on inbound", _status_signed_for_inbound, "signature_invalid"),
]


@pytest.mark.parametrize(("label", "send", "reason"), SHARED_KEY_REFUSALS, ids=[c[0] for c in SHARED_KEY_REFUSALS])
async def test_shared_key_refusals_store_nothing_and_are_counted(
    optout: OptoutHarness, label: str, send: Callable[[OptoutHarness, Org, Org], object], reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    org, keyed = await optout.new_org(), await optout.new_org(shared_key=True)
    total_before = await optout.fetchval("SELECT count(*) FROM webhook_requests")
    with caplog.at_level(logging.WARNING, logger="services.optout.webhooks"):
        response = await send(optout, org, keyed)  # type: ignore[misc]
    assert response.status_code == 403
    assert await optout.fetchval("SELECT count(*) FROM webhook_requests") == total_before
    refusals = [r for r in caplog.records if r.getMessage() == "webhook.refused"]
    assert [r.reason for r in refusals] == [reason]  # type: ignore[attr-defined]
    assert "signature settings" in refusals[0].detail  # type: ignore[attr-defined]
    refused_org = org if reason == "shared_key_not_configured" else keyed
    await eventually(lambda: optout.fetchval(
        "SELECT sum(refusals) = 1 FROM webhook_signature_refusals WHERE org_id = $1", refused_org.id), timeout=5)


async def test_a_shared_key_configured_after_the_account_was_cached_works_at_once(optout: OptoutHarness) -> None:
    org = await optout.new_org()
    assert (await optout.inbound(org, "hello", fresh_phone())).status_code == 200  # the account is cached now
    keyed = Org(**{**org.__dict__, "shared_key_id": fresh_shared_key_id(), "shared_key_secret": "k" * 43})
    async with optout.pool.acquire() as conn:
        sealed = await seal(conn, org.id, WEBHOOK_SHARED_KEY_SECRET, keyed.shared_key_secret)
        await conn.execute("UPDATE sms_accounts SET webhook_shared_key_id = $1, webhook_shared_key_secret = $2 "
                           "WHERE org_id = $3", keyed.shared_key_id, sealed, org.id)
    params = optout.inbound_params(keyed, "hello", fresh_phone())
    assert (await optout.shared(keyed, "/twilio/inbound", params)).status_code == 200


# ---------------------------------------------------------------------------------------------
# A callback touches only the organisation whose account signed it


async def test_a_callback_signed_by_another_organisation_changes_nothing_of_the_owner(
    optout: OptoutHarness, caplog: pytest.LogCaptureFixture
) -> None:
    owner, other = await optout.new_org(), await optout.new_org()
    phone = fresh_phone()
    unreachable = await optout.add_ledger_row(owner, phone, status="sent")
    blocked = await optout.add_ledger_row(owner, fresh_phone(), status="sent")
    # other's admin, with a token on their own account, signs callbacks naming owner's messages.
    with caplog.at_level(logging.WARNING, logger="services.optout.handlers"):
        assert (await optout.status(other, unreachable, "undelivered", "30005", To=phone)).status_code == 200
        assert (await optout.status(other, blocked, "failed", "30032")).status_code == 200
        assert (await optout.status(other, blocked, "failed", "21610", To=phone)).status_code == 200
        await eventually(lambda: optout.settled(other), timeout=10)
    outcomes = await optout.fetch("SELECT outcome FROM webhook_requests WHERE org_id = $1", other.id)
    assert [r["outcome"] for r in outcomes] == ["sid_foreign"] * 3
    assert len([r for r in caplog.records if r.getMessage() == "status.sid_foreign"]) == 3

    ledger = await optout.fetch("SELECT message_sid, twilio_status, error_code FROM send_ledger WHERE org_id = $1 "
                                "ORDER BY message_sid", owner.id)
    assert {(r["message_sid"], r["twilio_status"], r["error_code"]) for r in ledger} == {
        (unreachable, "sent", None), (blocked, "sent", None)}
    assert await optout.fetchval("SELECT verification FROM senders WHERE org_id = $1", owner.id) == "verified"
    assert await optout.fetchval("SELECT state FROM campaign_runs WHERE id = $1", owner.run_id) == "sending"
    assert await optout.fetchval("SELECT count(*) FROM bad_numbers WHERE phone = $1", phone) == 0
    assert await optout.fetchval("SELECT count(*) FROM suppressions WHERE phone = $1", phone) == 0
    assert not optout.events.status(unreachable) and not optout.events.status(blocked)

    # The owner's own callback, the same SID, status and error code, is not taken for a repeat.
    await optout.status(owner, unreachable, "undelivered", "30005", To=phone)
    await eventually(lambda: optout.fetchval("SELECT error_code FROM bad_numbers WHERE org_id = $1 AND phone = $2",
                                             owner.id, phone), timeout=5)
    assert await optout.fetchval("SELECT twilio_status FROM send_ledger WHERE message_sid = $1",
                                 unreachable) == "undelivered"
    assert await optout.fetchval("SELECT count(*) FROM bad_numbers WHERE org_id = $1", other.id) == 0


async def test_a_foreign_callback_stored_early_is_never_reconciled_into_the_owner_ledger(
    optout: OptoutHarness,
) -> None:
    owner, other = await optout.new_org(), await optout.new_org()
    sid = fresh_sid()
    await optout.status(other, sid, "delivered")  # before the owner's dispatcher recorded the SID
    await eventually(lambda: optout.settled(other), timeout=10)
    await optout.add_ledger_row(owner, fresh_phone(), sid)
    processor = optout.service.workers[0].__self__  # type: ignore[attr-defined]
    assert isinstance(processor, WebhookProcessor)
    await processor.reconcile()  # the sweep that applies early callbacks once their SID is known
    assert await optout.fetchval("SELECT matched FROM status_callbacks WHERE message_sid = $1", sid) is False
    assert await optout.fetchval("SELECT twilio_status FROM send_ledger WHERE message_sid = $1", sid) is None


async def test_bad_signatures_for_an_account_are_counted_for_its_organisation(optout: OptoutHarness) -> None:
    org, bystander = await optout.new_org(), await optout.new_org()
    for _ in range(3):
        assert (await _forged_with_other_token(optout, org)).status_code == 403  # type: ignore[attr-defined]
    assert (await _unsigned(optout, org)).status_code == 403  # type: ignore[attr-defined]  # not a bad signature
    assert (await optout.inbound(org, "hello", fresh_phone())).status_code == 200
    await eventually(lambda: optout.fetchval(
        "SELECT sum(refusals) = 3 FROM webhook_signature_refusals WHERE org_id = $1", org.id), timeout=5)
    assert await optout.fetchval("SELECT last_url FROM webhook_signature_refusals WHERE org_id = $1",
                                 org.id) == PUBLIC_BASE + "/twilio/inbound"
    assert await optout.fetchval("SELECT count(*) FROM webhook_signature_refusals WHERE org_id = $1",
                                 bystander.id) == 0
