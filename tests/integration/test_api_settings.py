"""``/api/v1/settings`` on the real database: write-only secrets, the linked account, country and general
settings with the 30,000-segment warning, and the default sender."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from harness.credentials import TEST_SECRETS
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from libs.common.secret_store import API_KEY_SECRET, AUTH_TOKEN, WEBHOOK_SHARED_KEY_SECRET
from services.usage.retention import RetentionPruner, RetentionTuning
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

SID_A = "AC" + "a" * 32
SID_B = "AC" + "b" * 32
SID_D = "AC" + "d" * 32
SID_E = "AC" + "e" * 32
SID_F = "AC" + "f" * 32
SID_G = "AC" + "1a" * 16
SID_H = "AC" + "1b" * 16
TOKEN = "0123456789abcdef0123456789abcdef"
SECONDARY_TOKEN = "f" * 32
KEY_SID = "SK" + "c" * 32
KEY_SECRET = "a-very-secret-api-key-secret"
# The Twilio accounts the stand-in knows besides its own: linking checks every credential with Twilio.
ACCOUNTS = [{"account_sid": SID_A, "auth_token": TOKEN},
            {"account_sid": SID_B, "auth_token": TOKEN, "secondary_auth_token": SECONDARY_TOKEN},
            {"account_sid": SID_D, "auth_token": TOKEN}, {"account_sid": SID_E, "auth_token": TOKEN},
            {"account_sid": SID_F, "auth_token": TOKEN}, {"account_sid": SID_G, "auth_token": TOKEN},
            {"account_sid": SID_H, "auth_token": TOKEN}]


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), ["+18885550100"],
                           extra_config={"other_accounts": ACCOUNTS})
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, standin: TwilioStandin) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap, public_base_url="http://sms.example.org",
                                      twilio_api_base_url=standin.url) as client:
        yield client


@pytest.fixture
async def admin(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await signed_in(db_pool, client, org.id, role="admin")


async def settings(caller: Caller) -> dict[str, Any]:
    response = await caller.call("GET", "/api/v1/settings")
    assert response.status_code == 200, response.text
    return response.json()


async def test_secrets_are_write_only(admin: Caller, db_pool: asyncpg.Pool) -> None:
    before = await settings(admin)
    assert before["sms_account"] == {"linked": False, "account_sid": None, "friendly_name": "", "account_type": None,
                                     "alpha_sender_id": None, "max_segments": None, "test_mode": False,
                                     "webhook_base_url": None, "auth_token_set": False, "api_key_sid": None,
                                     "api_key_secret_set": False, "webhook_shared_key_id": None,
                                     "webhook_shared_key_set": False}
    problem(await admin.call("PATCH", "/api/v1/settings/sms-account", {"test_mode": True}), 404, "sms_account_missing")

    linked = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                              {"account_sid": SID_A, "auth_token": TOKEN})
    with_key = await admin.call("PUT", "/api/v1/settings/sms-account/api-key",
                                {"api_key_sid": KEY_SID, "api_key_secret": KEY_SECRET})
    for response in (linked, with_key, await admin.call("GET", "/api/v1/settings")):
        assert response.status_code == 200, response.text
        assert TOKEN not in response.text and KEY_SECRET not in response.text
    account = with_key.json()["sms_account"]
    assert account["linked"] and account["account_sid"] == SID_A and account["auth_token_set"]
    assert account["api_key_sid"] == KEY_SID and account["api_key_secret_set"]
    assert account["webhook_base_url"] == "http://sms.example.org"  # the public URL, until someone sets another
    stored = await db_pool.fetchrow("SELECT auth_token, api_key_secret FROM sms_accounts WHERE org_id = $1",
                                    admin.org_id)
    # Stored sealed for this organisation and column: the plain value is nowhere in the row.
    assert stored["auth_token"].startswith("tp1:") and stored["api_key_secret"].startswith("tp1:")
    assert TOKEN not in str(dict(stored)) and KEY_SECRET not in str(dict(stored))
    async with db_pool.acquire() as conn:
        assert await TEST_SECRETS.open(conn, admin.org_id, AUTH_TOKEN, stored["auth_token"]) == TOKEN
        assert await TEST_SECRETS.open(conn, admin.org_id, API_KEY_SECRET, stored["api_key_secret"]) == KEY_SECRET
    page = await admin.call("GET", "/settings", Accept="text/html")
    assert page.status_code == 200 and SID_A in page.text and TOKEN not in page.text and KEY_SECRET not in page.text

    removed = await admin.call("DELETE", "/api/v1/settings/sms-account/api-key")
    assert removed.json()["sms_account"]["api_key_sid"] is None
    assert not removed.json()["sms_account"]["api_key_secret_set"]


async def test_a_new_token_keeps_the_api_key_and_another_account_drops_it(
    admin: Caller, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    await admin.call("PUT", "/api/v1/settings/sms-account/credentials", {"account_sid": SID_B, "auth_token": TOKEN})
    await admin.call("PUT", "/api/v1/settings/sms-account/api-key",
                     {"api_key_sid": KEY_SID, "api_key_secret": KEY_SECRET})
    same = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                            {"account_sid": SID_B, "auth_token": SECONDARY_TOKEN})
    assert same.json()["sms_account"]["api_key_sid"] == KEY_SID
    other_sid = SID_D
    moved = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                             {"account_sid": other_sid, "auth_token": TOKEN})
    assert moved.json()["sms_account"]["account_sid"] == other_sid
    assert moved.json()["sms_account"]["api_key_sid"] is None

    neighbour = await signed_in(db_pool, client, (await api_harness.make_org(db_pool)).id, role="admin")
    taken = await neighbour.call("PUT", "/api/v1/settings/sms-account/credentials",
                                 {"account_sid": other_sid, "auth_token": TOKEN})
    problem(taken, 409, "account_in_use")
    bad = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                           {"account_sid": "AC123", "auth_token": ""})
    assert sorted(e["field"] for e in problem(bad, 422, "request_invalid")["errors"]) == ["account_sid", "auth_token"]


async def test_a_webhook_shared_key_is_created_with_twilio_or_entered_and_never_shown(
    admin: Caller, db_pool: asyncpg.Pool, standin: TwilioStandin
) -> None:
    path = "/api/v1/settings/sms-account/webhook-shared-key"
    problem(await admin.call("POST", path, {}), 404, "sms_account_missing")
    problem(await admin.call("PUT", path, {"shared_key_id": "webhooks_sharedkey_x", "shared_key_secret": "s" * 40}),
            404, "sms_account_missing")
    await admin.call("PUT", "/api/v1/settings/sms-account/credentials", {"account_sid": SID_G, "auth_token": TOKEN})

    assert (await admin.call("POST", path)).status_code == 200  # the page's button sends no body
    created = await admin.call("POST", path, {"friendly_name": "Harbor webhooks"})
    assert created.status_code == 200, created.text
    account = created.json()["sms_account"]
    assert account["webhook_shared_key_set"] and account["webhook_shared_key_id"].startswith("webhooks_sharedkey_")
    stored = await db_pool.fetchrow("SELECT webhook_shared_key_id, webhook_shared_key_secret FROM sms_accounts "
                                    "WHERE org_id = $1", admin.org_id)
    assert stored["webhook_shared_key_id"] == account["webhook_shared_key_id"]
    async with httpx.AsyncClient(base_url=standin.url, auth=(SID_G, TOKEN)) as twilio:  # Twilio has the same key
        at_twilio = (await twilio.get(f"/v1/Webhooks/SharedKeys/{stored['webhook_shared_key_id']}")).json()
    assert at_twilio["friendlyName"] == "Harbor webhooks" and "secret" not in at_twilio
    page = await admin.call("GET", "/settings", Accept="text/html")
    assert page.status_code == 200 and stored["webhook_shared_key_id"] in page.text
    for response in (created, await admin.call("GET", "/api/v1/settings"), page):
        assert stored["webhook_shared_key_secret"] not in response.text

    entered = await admin.call("PUT", path, {"shared_key_id": "webhooks_sharedkey_01hx5z", "shared_key_secret":
                                             "a-secret-copied-from-the-console"})
    assert entered.json()["sms_account"]["webhook_shared_key_id"] == "webhooks_sharedkey_01hx5z"
    assert "a-secret-copied-from-the-console" not in entered.text
    sealed = await db_pool.fetchval("SELECT webhook_shared_key_secret FROM sms_accounts WHERE org_id = $1",
                                    admin.org_id)
    assert sealed.startswith("tp1:") and "a-secret-copied-from-the-console" not in sealed
    async with db_pool.acquire() as conn:
        assert await TEST_SECRETS.open(conn, admin.org_id, WEBHOOK_SHARED_KEY_SECRET, sealed) == \
            "a-secret-copied-from-the-console"
    bad = problem(await admin.call("PUT", path, {"shared_key_id": "key=x,algorithm=y", "shared_key_secret": "short"}),
                  422, "request_invalid")
    messages = {e["field"]: e["message"] for e in bad["errors"]}
    assert messages["shared_key_id"].startswith("Shared key id must be a Twilio SharedKey id")
    assert messages["shared_key_secret"] == "Shared key secret must be at least 8 characters."
    missing = problem(await admin.call("PUT", path, {"shared_key_id": "webhooks_sharedkey_01hx5z"}), 422,
                      "request_invalid")
    assert missing["errors"][0]["field"] == "shared_key_secret"

    cleared = await admin.call("DELETE", path)
    assert cleared.json()["sms_account"]["webhook_shared_key_id"] is None
    assert not cleared.json()["sms_account"]["webhook_shared_key_set"]
    assert await db_pool.fetchval("SELECT webhook_shared_key_secret FROM sms_accounts WHERE org_id = $1",
                                  admin.org_id) is None

    await admin.call("PUT", path, {"shared_key_id": "webhooks_sharedkey_01hx5z", "shared_key_secret": "s" * 40})
    same = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                            {"account_sid": SID_G, "auth_token": TOKEN})  # a new token: the key stays
    assert same.json()["sms_account"]["webhook_shared_key_id"] == "webhooks_sharedkey_01hx5z"
    moved = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                             {"account_sid": SID_H, "auth_token": TOKEN})  # another account: its key is not ours
    assert moved.json()["sms_account"]["webhook_shared_key_id"] is None


async def test_credentials_twilio_refuses_are_not_linked(admin: Caller, db_pool: asyncpg.Pool) -> None:
    for body, field, code in [({"account_sid": SID_F, "auth_token": "0" * 32}, "auth_token",
                               "twilio_credentials_refused"),
                              ({"account_sid": "AC" + "9" * 32, "auth_token": TOKEN}, "auth_token",
                               "twilio_credentials_refused")]:
        refused = problem(await admin.call("PUT", "/api/v1/settings/sms-account/credentials", body), 422, code)
        assert refused["errors"][0]["field"] == field and "Twilio refused" in refused["detail"]
        assert body["auth_token"] not in str(refused)  # the refused token is not echoed back
    assert await db_pool.fetchval("SELECT count(*) FROM sms_accounts WHERE org_id = $1", admin.org_id) == 0


async def test_twilio_test_credentials_can_be_linked(admin: Caller, standin: TwilioStandin,
                                                     db_pool: asyncpg.Pool) -> None:
    test_sid, test_token = standin.config.test_account_sid, standin.config.test_auth_token
    await db_pool.execute("DELETE FROM sms_accounts WHERE account_sid = $1", test_sid)  # earlier tests' orgs
    linked = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                              {"account_sid": test_sid, "auth_token": test_token})
    assert linked.status_code == 200, linked.text
    assert linked.json()["sms_account"]["account_sid"] == test_sid


async def test_an_account_linked_elsewhere_is_refused_before_twilio_is_asked(
    admin: Caller, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    owner = await api_harness.make_org(db_pool, max_segments=1000)  # linked to an account of its own
    taken_sid = await db_pool.fetchval("SELECT account_sid FROM sms_accounts WHERE org_id = $1", owner.id)
    refused = problem(await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                                       {"account_sid": taken_sid, "auth_token": "token-of-someone-else"}),
                      409, "account_in_use")
    assert "another organisation" in refused["detail"]


async def test_twilio_unreachable_is_a_retryable_problem(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool
) -> None:
    async with api_harness.api_client(database_url, kafka_bootstrap, twilio_api_base_url="http://127.0.0.1:9") as c:
        caller = await signed_in(db_pool, c, (await api_harness.make_org(db_pool)).id, role="admin")
        problem(await caller.call("PUT", "/api/v1/settings/sms-account/credentials",
                                  {"account_sid": "AC" + "1" * 32, "auth_token": TOKEN}), 503, "twilio_unavailable")


async def test_account_details_change_and_alpha_sender_ids_are_checked(admin: Caller) -> None:
    await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                     {"account_sid": SID_E, "auth_token": TOKEN})
    changed = await admin.call("PATCH", "/api/v1/settings/sms-account", {
        "friendly_name": "Harbor Nurses", "account_type": "Trial", "alpha_sender_id": "HarborRN",
        "max_segments": 25_000, "test_mode": True})
    account = changed.json()["sms_account"]
    assert (account["friendly_name"], account["account_type"], account["alpha_sender_id"]) == (
        "Harbor Nurses", "Trial", "HarborRN")
    assert account["max_segments"] == 25_000 and account["test_mode"] is True
    assert "alpha sender IDs cannot be used to text the US or Canada" in changed.json()["warnings"]
    assert (await admin.call("GET", "/api/v1/me")).status_code == 200
    cleared = await admin.call("PATCH", "/api/v1/settings/sms-account", {"alpha_sender_id": "", "max_segments": None})
    assert cleared.json()["sms_account"]["alpha_sender_id"] is None
    assert cleared.json()["sms_account"]["max_segments"] is None
    for value in ("12345", "TwelveLetter", "Bad!Name"):
        refused = await admin.call("PATCH", "/api/v1/settings/sms-account", {"alpha_sender_id": value})
        assert problem(refused, 422, "request_invalid")["errors"][0]["field"] == "alpha_sender_id"
    problem(await admin.call("PATCH", "/api/v1/settings/sms-account", {"test_mode": None}), 422, "value_required")


async def test_the_default_prefix_is_a_real_calling_code_with_an_example(admin: Caller, db_pool: asyncpg.Pool) -> None:
    uk = await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+44"})
    assert uk.json()["country"] == {"default_country_prefix": "+44", "region": "GB",
                                    "example_national": "07700 123456", "example_e164": "+447700123456"}
    assert await db_pool.fetchval("SELECT default_country_prefix FROM organisations WHERE id = $1",
                                  admin.org_id) == "+44"
    problem(await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+999"}), 422,
            "prefix_unknown")
    bad = await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "44"})
    assert problem(bad, 422, "request_invalid")["errors"][0]["field"] == "default_country_prefix"
    preview = await admin.call("POST", "/api/v1/messages/preview", {"body": "Hello"})
    assert preview.json()["country"] == "GB"  # the composer prices for the new default


async def test_general_settings_warn_above_30000_segments(admin: Caller, db_pool: asyncpg.Pool) -> None:
    high = await admin.call("PATCH", "/api/v1/settings/general", {"campaign_segment_limit": 35_000})
    assert high.status_code == 200, high.text
    assert high.json()["general"]["campaign_segment_limit"] == 35_000
    assert high.json()["warnings"] == ["a per-campaign limit of 35,000 segments is above the recommended 15,000-30,000"]
    assert (await admin.call("POST", "/api/v1/campaigns", {"name": "x"})).json()["segment_limit"] == 35_000
    usual = await admin.call("PATCH", "/api/v1/settings/general", {"campaign_segment_limit": 30_000})
    assert usual.json()["warnings"] == []
    problem(await admin.call("PATCH", "/api/v1/settings/general", {"campaign_segment_limit": 0}), 422,
            "request_invalid")

    emails = await admin.call("PATCH", "/api/v1/settings/general",
                              {"alert_emails": ["Office@Example.org", "office@example.org", "it@example.org"]})
    assert emails.json()["general"]["alert_emails"] == ["office@example.org", "it@example.org"]
    bad = await admin.call("PATCH", "/api/v1/settings/general", {"alert_emails": ["not an address"]})
    assert problem(bad, 422, "request_invalid")["errors"][0]["field"] == "alert_emails.0"
    problem(await admin.call("PATCH", "/api/v1/settings/general", {"time_zone": "Mars/Olympus"}), 422,
            "time_zone_unknown")
    assert (await admin.call("PATCH", "/api/v1/settings/general", {"time_zone": "Europe/London"})).json()[
        "general"]["time_zone"] == "Europe/London"


async def test_the_default_sender_moves_to_another_of_the_organisations_senders(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    second = await db_pool.fetchval(
        "INSERT INTO senders (org_id, address) VALUES ($1, '+18885550101') RETURNING id", admin.org_id)
    moved = await admin.call("PATCH", "/api/v1/settings/general", {"default_sender_id": str(second)})
    assert moved.json()["general"]["default_sender_id"] == str(second)
    assert [s["is_default"] for s in moved.json()["senders"]] == [True, False]
    assert await db_pool.fetchval("SELECT count(*) FROM senders WHERE org_id = $1 AND is_default", admin.org_id) == 1
    senders = (await admin.call("GET", "/api/v1/senders")).json()
    assert senders[0]["address"] == "+18885550101" and senders[0]["is_default"]


async def test_a_webhook_url_twilio_cannot_or_must_not_call_is_refused_in_production(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool, standin: TwilioStandin
) -> None:
    async with api_harness.api_client(database_url, kafka_bootstrap, env="production",
                                      secret_key="a-production-secret-for-this-test-only",
                                      twilio_api_base_url=standin.url) as c:
        org = await api_harness.make_org(db_pool, max_segments=1000)
        caller = await signed_in(db_pool, c, org.id, role="admin")
        for url, code in [("https://169.254.169.254/latest/meta-data/", "url_host_internal"),
                          ("http://sms.example.org/hooks", "url_not_https"),
                          ("https://localhost:8001", "url_host_internal")]:
            refused = problem(await caller.call("PATCH", "/api/v1/settings/sms-account", {"webhook_base_url": url}),
                              422, code)
            assert refused["errors"][0]["field"] == "webhook_base_url"
            assert refused["detail"].startswith("webhook_base_url: ")
        assert await db_pool.fetchval("SELECT webhook_base_url FROM sms_accounts WHERE org_id = $1",
                                      org.id) == "https://hooks.example.org"
        problem(await caller.call("PUT", "/api/v1/settings/sms-account/credentials",
                                  {"account_sid": SID_F, "auth_token": TOKEN,
                                   "webhook_base_url": "https://10.0.0.7/hooks"}), 422, "url_host_internal")
        changed = await caller.call("PATCH", "/api/v1/settings/sms-account",
                                    {"webhook_base_url": "https://sms.example.org/hooks/"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["sms_account"]["webhook_base_url"] == "https://sms.example.org/hooks"


async def test_admins_set_retention_within_bounds_and_the_pruner_follows_it(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    defaults = (await settings(admin))["general"]
    assert [defaults[f"retention_{kind}_days"] for kind in ("webhook", "reply", "body", "csv")] == [30, 180, 90, 90]
    hook = await db_pool.fetchval(
        """INSERT INTO webhook_requests (kind, org_id, account_sid, url, params, received_at, state)
           VALUES ('status', $1, 'AC1', 'https://hooks.test/twilio/status', '{}', now() - interval '10 days', 'done')
           RETURNING id""", admin.org_id)
    pruner = RetentionPruner(db_pool, tuning=RetentionTuning(batch=10))
    await pruner.prune()
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_requests WHERE id = $1", hook) == 1  # 30 days

    changed = await admin.call("PATCH", "/api/v1/settings/general", {"retention_webhook_days": 7})
    assert changed.status_code == 200, changed.text
    assert changed.json()["general"]["retention_webhook_days"] == 7
    assert changed.json()["general"]["retention_body_days"] == 90  # the others as they were
    await pruner.prune()
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_requests WHERE id = $1", hook) == 0

    for value in (0, 3651, "a month"):
        bad = await admin.call("PATCH", "/api/v1/settings/general", {"retention_body_days": value})
        assert problem(bad, 422, "request_invalid")["errors"][0]["field"] == "retention_body_days"
    null = await admin.call("PATCH", "/api/v1/settings/general", {"retention_csv_days": None})
    assert problem(null, 422, "value_required")["errors"][0]["field"] == "retention_csv_days"
    assert (await settings(admin))["general"]["retention_body_days"] == 90


async def test_admins_set_the_member_cap_per_run_or_leave_it_to_the_platform(admin: Caller) -> None:
    assert (await settings(admin))["general"]["run_member_cap"] is None  # the platform's default
    changed = await admin.call("PATCH", "/api/v1/settings/general", {"run_member_cap": 400_000})
    assert changed.status_code == 200, changed.text
    assert changed.json()["general"]["run_member_cap"] == 400_000
    for value in (0, 10_000_001, "lots"):
        bad = await admin.call("PATCH", "/api/v1/settings/general", {"run_member_cap": value})
        assert problem(bad, 422, "request_invalid")["errors"][0]["field"] == "run_member_cap"
    back = await admin.call("PATCH", "/api/v1/settings/general", {"run_member_cap": None})
    assert back.status_code == 200 and back.json()["general"]["run_member_cap"] is None


async def test_admins_turn_the_reply_digests_on_from_now_and_off(admin: Caller, db_pool: asyncpg.Pool) -> None:
    assert (await settings(admin))["general"]["reply_digests"] is False
    since = "SELECT reply_digests_since FROM organisations WHERE id = $1"
    on = await admin.call("PATCH", "/api/v1/settings/general", {"reply_digests": True})
    assert on.status_code == 200 and on.json()["general"]["reply_digests"] is True, on.text
    first = await db_pool.fetchval(since, admin.org_id)
    assert first is not None
    again = await admin.call("PATCH", "/api/v1/settings/general", {"reply_digests": True, "run_member_cap": 9})
    assert again.status_code == 200 and await db_pool.fetchval(since, admin.org_id) == first  # still from then
    bad = await admin.call("PATCH", "/api/v1/settings/general", {"reply_digests": None})
    assert problem(bad, 422, "value_required")["errors"][0]["field"] == "reply_digests"
    off = await admin.call("PATCH", "/api/v1/settings/general", {"reply_digests": False})
    assert off.status_code == 200 and off.json()["general"]["reply_digests"] is False
    assert await db_pool.fetchval(since, admin.org_id) is None


async def test_admins_turn_on_the_revocation_confirmation_with_their_own_words(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    defaults = (await settings(admin))["general"]
    assert defaults["revocation_confirmation"] is False
    assert defaults["revocation_confirmation_text"].startswith("You will receive no more texts")
    words = "Alumni Society: you will get no more texts from us. Reply START to rejoin."
    changed = await admin.call("PATCH", "/api/v1/settings/general",
                               {"revocation_confirmation": True, "revocation_confirmation_text": f"  {words} "})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["general"]["revocation_confirmation"],
            changed.json()["general"]["revocation_confirmation_text"]) == (True, words)
    assert await db_pool.fetchval("SELECT revocation_confirmation FROM organisations WHERE id = $1",
                                  admin.org_id) is True

    for text, code in (("See our offers at https://example.org", "confirmation_has_link"),
                       ("Visit www.example.org", "confirmation_has_link"), ("", "request_invalid"),
                       ("x" * 321, "request_invalid"), (None, "value_required")):
        bad = await admin.call("PATCH", "/api/v1/settings/general", {"revocation_confirmation_text": text})
        assert problem(bad, 422, code)["errors"][0]["field"] == "revocation_confirmation_text"
    assert (await settings(admin))["general"]["revocation_confirmation_text"] == words


async def test_admins_set_a_senders_pace_within_what_twilio_sells_a_toll_free_number(
    admin: Caller, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    sender_id = (await settings(admin))["senders"][0]["id"]
    assert (await settings(admin))["senders"][0]["segments_per_second"] == 3  # Twilio's toll-free default
    raised = await admin.call("PATCH", f"/api/v1/senders/{sender_id}", {"segments_per_second": 150})
    assert raised.status_code == 200, raised.text
    assert raised.json()["segments_per_second"] == 150
    assert await db_pool.fetchval("SELECT segments_per_second FROM senders WHERE id = $1", sender_id) == 150
    assert await db_pool.fetchval(
        "SELECT after->>'segments_per_second' FROM audit_events WHERE org_id = $1 AND action = 'sender.rate_changed'",
        admin.org_id) == "150.0"

    for value in (0, 151, 2.5, "fast", None):  # Twilio sells whole segments per second, 1 to 150
        bad = await admin.call("PATCH", f"/api/v1/senders/{sender_id}", {"segments_per_second": value})
        assert problem(bad, 422, "request_invalid")["errors"][0]["field"] == "segments_per_second"
    assert problem(await admin.call("PATCH", f"/api/v1/senders/{sender_id}", {}), 422, "request_invalid")
    assert await db_pool.fetchval("SELECT segments_per_second FROM senders WHERE id = $1", sender_id) == 150

    elsewhere = await api_harness.make_org(db_pool, sender="+18885550177")
    not_ours = await admin.call("PATCH", f"/api/v1/senders/{elsewhere.sender_id}", {"segments_per_second": 25})
    problem(not_ours, 404, "sender_missing")
    assert await db_pool.fetchval("SELECT segments_per_second FROM senders WHERE id = $1", elsewhere.sender_id) == 3

    staff = await signed_in(db_pool, client, admin.org_id, role="staff")
    refused = await staff.call("PATCH", f"/api/v1/senders/{sender_id}", {"segments_per_second": 3})
    assert refused.status_code == 403, refused.text


async def test_the_database_holds_every_senders_pace_to_the_toll_free_range(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    for rate in (0.5, 151):
        with pytest.raises(asyncpg.CheckViolationError):
            await db_pool.execute("UPDATE senders SET segments_per_second = $2 WHERE org_id = $1", admin.org_id, rate)


async def test_admins_set_the_short_link_domain_or_leave_it_to_the_platform(admin: Caller) -> None:
    assert (await settings(admin))["general"]["short_link_base_url"] is None
    changed = await admin.call("PATCH", "/api/v1/settings/general", {"short_link_base_url": "https://go.example.org/"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["general"]["short_link_base_url"] == "https://go.example.org"
    for value in ("go.example.org", "ftp://go.example.org", "https://go.example.org/path"):
        bad = await admin.call("PATCH", "/api/v1/settings/general", {"short_link_base_url": value})
        assert problem(bad, 422, "short_link_base_invalid")["errors"][0]["field"] == "short_link_base_url"
    assert (await settings(admin))["general"]["short_link_base_url"] == "https://go.example.org"
    back = await admin.call("PATCH", "/api/v1/settings/general", {"short_link_base_url": None})
    assert back.status_code == 200 and back.json()["general"]["short_link_base_url"] is None
