"""Sign-in, sessions, CSRF, API keys, roles, and tenancy: one organisation never reads or changes another's
data, through the API or the pages (a 404, as if it did not exist)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from harness.factories import PASSWORD
from services.api import auth
from services.api.password_work import PASSWORDS
from tests.integration import api_harness
from tests.integration.api_harness import (
    Caller,
    client_for,
    idempotency_key,
    problem,
    signed_in,
    with_api_key,
)

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app:
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does."""
    async with client_for(app, keep_cookies=True) as client:
        yield client


async def submit_sign_in(browser: httpx.AsyncClient, email: str, password: str, next: str = "/") -> httpx.Response:
    form = await browser.get(f"/sign-in?next={next}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    return await browser.post("/sign-in", data={"email": email, "password": password, "csrf_token": token.group(1),
                                                 "next": next})


def set_cookie(response: httpx.Response, name: str) -> str:
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]
    assert len(cookies) == 1, response.headers.get_list("set-cookie")
    return cookies[0]


async def test_signing_in_sets_an_httponly_lax_session_cookie_and_signing_out_ends_it(
    browser: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, email = await api_harness.make_user(db_pool, org.id, role="admin")

    signed = await submit_sign_in(browser, email.upper(), PASSWORD, next="/campaigns?tab=draft")
    assert signed.status_code == 303 and signed.headers["location"] == "/campaigns?tab=draft"
    cookie = set_cookie(signed, "textpulse_session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie and "secure" not in cookie
    token = signed.cookies["textpulse_session"]
    stored = await db_pool.fetchrow("SELECT * FROM sessions WHERE token_hash = $1", auth.token_hash(token))
    assert stored is not None and token not in str(dict(stored))  # only the hash is kept

    home = await browser.get("/", headers=HTML)
    assert home.status_code == 200 and "Sign out" in home.text
    assert f'<meta name="csrf-token" content="{stored["csrf_token"]}">' in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert (await browser.get("/api/v1/me")).json()["actor"] == email

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf is not None
    out = await browser.post("/sign-out", data={"csrf_token": csrf.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert await db_pool.fetchval("SELECT count(*) FROM sessions WHERE token_hash = $1", auth.token_hash(token)) == 0
    gone = await browser.get("/", headers=HTML)
    assert gone.status_code == 303 and gone.headers["location"] == "/sign-in?next=%2F"


async def test_the_cookie_is_secure_and_host_only_when_the_public_url_is_https(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, email = await api_harness.make_user(db_pool, org.id)
    async with api_harness.api_app(database_url, kafka_bootstrap, public_base_url="https://sms.example.org") as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as browser:
            signed = await submit_sign_in(browser, email, PASSWORD)
    cookie = set_cookie(signed, "__Host-textpulse_session").lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie and "domain" not in cookie


async def test_a_wrong_password_or_address_gets_one_answer_and_ten_attempts_lock_either(
    browser: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, email = await api_harness.make_user(db_pool, org.id)
    unknown_email = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    wrong = await submit_sign_in(browser, email, "not the password at all")
    unknown = await submit_sign_in(browser, unknown_email, PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401 and "do not match an active account" in response.text
        assert "textpulse_session" not in response.cookies

    for _ in range(auth.SIGN_IN_MAX_ATTEMPTS_PER_ACCOUNT - 1):
        await submit_sign_in(browser, email, "still wrong, still wrong")
        await submit_sign_in(browser, unknown_email, "still wrong, still wrong")
    locked = await submit_sign_in(browser, email, PASSWORD)
    locked_unknown = await submit_sign_in(browser, unknown_email, PASSWORD)
    for response in (locked, locked_unknown):  # a known and an unknown address are refused alike
        assert response.status_code == 429 and "Too many sign-in attempts" in response.text
        assert response.headers["Retry-After"] == "900"
    await db_pool.execute("UPDATE sign_in_throttle SET window_started_at = now() - interval '16 minutes' "
                          "WHERE key = $1", auth.account_throttle_key(email))
    assert (await submit_sign_in(browser, email, PASSWORD)).status_code == 303
    assert await db_pool.fetchval("SELECT count(*) FROM sign_in_throttle WHERE key = $1",
                                  auth.account_throttle_key(email)) == 0  # a good sign-in starts the count again


def browser_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A cookie-keeping client whose requests come from ``address``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
                             base_url="http://api.test")


async def test_forty_concurrent_wrong_guesses_use_up_the_account_and_the_right_password_is_then_refused(
    app: FastAPI, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, email = await api_harness.make_user(db_pool, org.id)
    checked_before = PASSWORDS.performed

    async def guess(i: int) -> int:
        async with browser_from(app, f"198.51.100.{i + 1}") as browser:
            return (await submit_sign_in(browser, email, f"wrong guess number {i:04d}")).status_code

    answers = await asyncio.gather(*(guess(i) for i in range(40)))
    allowed = auth.SIGN_IN_MAX_ATTEMPTS_PER_ACCOUNT
    assert Counter(answers) == {401: allowed, 429: 40 - allowed}
    assert PASSWORDS.performed - checked_before == allowed  # the others were refused before any hashing
    async with browser_from(app, "198.51.100.200") as browser:
        assert (await submit_sign_in(browser, email, PASSWORD)).status_code == 429


async def test_a_flood_from_one_address_is_cut_off_and_a_sign_in_from_elsewhere_goes_through(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, email = await api_harness.make_user(db_pool, org.id)
    async with api_harness.api_app(database_url, kafka_bootstrap, sign_in_max_per_address=20) as app:
        checked_before = PASSWORDS.performed

        async def anonymous(i: int) -> int:
            async with browser_from(app, "203.0.113.9") as browser:
                return (await submit_sign_in(browser, f"guess-{i}-{uuid.uuid4().hex[:6]}@example.org",
                                             "a guessed password")).status_code

        answers = await asyncio.gather(*(anonymous(i) for i in range(60)))
        checked = PASSWORDS.performed - checked_before
        async with browser_from(app, "192.0.2.44") as browser:
            real = await submit_sign_in(browser, email, PASSWORD)
    assert Counter(answers) == {401: 20, 429: 40}
    assert checked == 20
    assert real.status_code == 303 and real.headers["location"] == "/"


async def test_the_sign_in_form_needs_its_own_token_and_never_redirects_off_site(
    browser: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    _, email = await api_harness.make_user(db_pool, org.id)
    forged = await browser.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 400 and "textpulse_session" not in forged.cookies
    for target in ("//evil.example.com/", "https://evil.example.com/", "/\\evil.example.com"):
        browser.cookies.clear()
        assert (await submit_sign_in(browser, email, PASSWORD, next=target)).headers["location"] == "/"
        # Signed in already, the form sends the browser on, and never off site either.
        assert (await browser.get(f"/sign-in?next={target}")).headers["location"] == "/"


async def test_a_session_change_needs_the_csrf_header(client: httpx.AsyncClient, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    caller = await signed_in(db_pool, client, org.id)
    cookie_only = {"Cookie": caller.headers["Cookie"]}
    draft = {"name": "Renewals"}
    problem(await client.post("/api/v1/campaigns", json=draft, headers=cookie_only), 403, "csrf_failed")
    wrong = cookie_only | {auth.CSRF_HEADER: auth.new_token()}
    problem(await client.post("/api/v1/campaigns", json=draft, headers=wrong), 403, "csrf_failed")
    assert (await client.get("/api/v1/campaigns", headers=cookie_only)).status_code == 200
    assert (await caller.call("POST", "/api/v1/campaigns", draft)).status_code == 201


async def test_callers_without_credentials_are_401_for_the_api_and_sent_to_sign_in_for_pages(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    refused = problem(await client.get("/api/v1/dashboard/home"), 401, "unauthenticated")
    assert refused["instance"] == "/api/v1/dashboard/home"
    assert (await client.get("/api/v1/me")).headers["www-authenticate"].startswith("Bearer")
    expired = {"Cookie": f"textpulse_session={auth.new_token()}"}
    problem(await client.get("/api/v1/me", headers=expired), 401, "session_expired")
    page = await client.get("/campaigns?tab=draft", headers=HTML)
    assert page.status_code == 303 and page.headers["location"] == "/sign-in?next=%2Fcampaigns%3Ftab%3Ddraft"

    org = await api_harness.make_org(db_pool)
    caller = await signed_in(db_pool, client, org.id)
    await db_pool.execute("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1",
                          caller.user_id)
    problem(await caller.call("GET", "/api/v1/me"), 401, "session_expired")


async def test_an_api_key_stops_at_its_expiry_and_its_last_use_is_shown(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await signed_in(db_pool, client, org.id, role="admin")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = (await admin.call("POST", "/api/v1/api-keys", {"name": "Quarterly export", "expires_at": expires})).json()
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(expires)
    bearer = Caller(org.id, client, {"Authorization": f"Bearer {created['key']}"}, "api-key:Quarterly export")
    assert (await bearer.call("GET", "/api/v1/me")).status_code == 200
    listed = {k["id"]: k for k in (await admin.call("GET", "/api/v1/api-keys")).json()}
    assert listed[created["id"]]["last_used_at"] is not None

    await db_pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
                          uuid.UUID(created["id"]))
    problem(await bearer.call("GET", "/api/v1/me"), 401, "api_key_invalid")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = problem(await admin.call("POST", "/api/v1/api-keys", {"name": "Old", "expires_at": past}), 422,
                      "expiry_in_the_past")
    assert refused["errors"][0]["field"] == "expires_at"


async def test_an_admin_key_cannot_mint_another_admin_key(client: httpx.AsyncClient, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    admin_key = await with_api_key(db_pool, client, org.id, role="admin")
    problem(await admin_key.call("POST", "/api/v1/api-keys", {"name": "Escalated", "role": "admin"}), 403,
            "admin_key_needs_signed_in_admin")
    assert (await admin_key.call("POST", "/api/v1/api-keys", {"name": "Staff sync"})).status_code == 201
    admin = await signed_in(db_pool, client, org.id, role="admin")
    assert (await admin.call("POST", "/api/v1/api-keys", {"name": "Second admin", "role": "admin"})).status_code == 201
    assert await db_pool.fetchval("SELECT count(*) FROM api_keys WHERE org_id = $1 AND role = 'admin'", org.id) == 2


async def test_api_keys_are_shown_once_work_as_bearer_tokens_and_stop_when_revoked(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await signed_in(db_pool, client, org.id, role="admin")
    created = await admin.call("POST", "/api/v1/api-keys", {"name": "iMIS sync"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("tpk_") and created.json()["prefix"] == key[4:12]
    listed = (await admin.call("GET", "/api/v1/api-keys")).json()
    assert key not in str(listed) and listed[0]["name"] == "iMIS sync"
    assert await db_pool.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = $1", auth.token_hash(key)) == 1

    bearer = Caller(org.id, client, {"Authorization": f"Bearer {key}"}, "api-key:iMIS sync")
    me = (await bearer.call("GET", "/api/v1/me")).json()
    assert me["via"] == "api_key" and me["role"] == "staff" and me["organisation_id"] == str(org.id)
    made = await bearer.call("POST", "/api/v1/campaigns", {"name": "From iMIS"})  # no CSRF: not a browser
    assert made.status_code == 201 and made.json()["created_by"] == "api-key:iMIS sync"
    problem(await bearer.call("GET", "/api/v1/settings"), 403, "admin_only")

    assert (await admin.call("DELETE", f"/api/v1/api-keys/{created.json()['id']}")).json()["revoked_at"]
    problem(await bearer.call("GET", "/api/v1/me"), 401, "api_key_invalid")
    for header in (f"Basic {key}", "Bearer", "Bearer tpk_nonsense", f"Token {key}"):
        problem(await client.get("/api/v1/me", headers={"Authorization": header}), 401, "api_key_invalid")


async def test_staff_cannot_use_admin_routes_or_open_settings(client: httpx.AsyncClient, db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    staff = await signed_in(db_pool, client, org.id, role="staff")
    for method, path in [("GET", "/api/v1/settings"), ("PATCH", "/api/v1/settings/general"),
                         ("GET", "/api/v1/users"), ("POST", "/api/v1/users"), ("GET", "/api/v1/api-keys"),
                         ("POST", "/api/v1/api-keys")]:
        problem(await staff.call(method, path, {} if method != "GET" else None), 403, "admin_only")
    page = await staff.call("GET", "/settings", **HTML)
    assert page.status_code == 403 and "text/html" in page.headers["content-type"] and "administrator" in page.text
    home = await staff.call("GET", "/", **HTML)
    assert home.status_code == 200 and 'href="/settings"' not in home.text
    assert (await staff.call("GET", "/api/v1/senders")).status_code == 200


async def test_one_organisation_can_never_read_or_change_anothers_data(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    ours_org, theirs_org = await api_harness.make_org(db_pool), await api_harness.make_org(db_pool)
    ours = await signed_in(db_pool, client, ours_org.id, role="admin")
    theirs = await signed_in(db_pool, client, theirs_org.id, role="admin")
    their_key = await with_api_key(db_pool, client, theirs_org.id)
    body = {"name": "Private", "body": "Hello", "audience": {"kind": "iqa", "query": "$/Members"}}
    campaign = (await theirs.call("POST", "/api/v1/campaigns", body)).json()
    path = f"/api/v1/campaigns/{campaign['id']}"
    their_user = (await theirs.call("GET", "/api/v1/users")).json()["items"][0]
    key_id = (await theirs.call("GET", "/api/v1/api-keys")).json()[0]["id"]
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT09:00")

    assert (await ours.call("GET", "/api/v1/campaigns")).json()["total"] == 0
    for method, url, payload in [
        ("GET", path, None), ("PATCH", path, {"name": "Mine now"}), ("DELETE", path, None),
        ("POST", f"{path}/schedule", {"at": soon}), ("POST", f"{path}/send-now", None),
        ("POST", f"{path}/pause", None), ("POST", f"{path}/resume", None), ("POST", f"{path}/cancel", None),
        ("POST", f"{path}/archive", None), ("POST", f"{path}/duplicate", None),
        ("GET", f"{path}/occurrences", None), ("GET", f"{path}/runs", None),
    ]:
        problem(await ours.call(method, url, payload, **idempotency_key()), 404, "campaign_not_found")
    problem(await ours.call("PATCH", f"/api/v1/users/{their_user['id']}", {"role": "staff"}), 404, "user_not_found")
    problem(await ours.call("PUT", f"/api/v1/users/{their_user['id']}/password", {"password": "x" * 20}), 404,
            "user_not_found")
    problem(await ours.call("DELETE", f"/api/v1/api-keys/{key_id}"), 404, "api_key_not_found")
    their_sender = {"default_sender_id": str(theirs_org.sender_id)}
    problem(await ours.call("PATCH", "/api/v1/settings/general", their_sender), 422, "sender_not_owned")
    draft = (await ours.call("POST", "/api/v1/campaigns", {"name": "Ours"})).json()
    refused = await ours.call("PATCH", f"/api/v1/campaigns/{draft['id']}", {"sender_id": str(theirs_org.sender_id)})
    problem(refused, 422, "sender_not_owned")
    for page in (f"/campaigns/{campaign['id']}", f"/campaigns/{campaign['id']}/edit"):
        response = await ours.call("GET", page, **HTML)
        assert response.status_code == 404 and "Private" not in response.text

    # Nothing of theirs moved, and their key still sees only their own organisation.
    assert (await theirs.call("GET", path)).json()["name"] == "Private"
    assert (await theirs.call("GET", path)).json()["state"] == "draft"
    assert (await their_key.call("GET", "/api/v1/campaigns")).json()["total"] == 1
    assert (await their_key.call("GET", f"/api/v1/campaigns/{draft['id']}")).status_code == 404
    assert await db_pool.fetchval("SELECT role FROM users WHERE id = $1", uuid.UUID(their_user["id"])) == "admin"
    assert (await ours.call("GET", "/api/v1/settings")).json()["senders"][0]["id"] == str(ours_org.sender_id)
    home = (await ours.call("GET", "/api/v1/dashboard/home")).json()
    assert sum(home["campaigns_by_state"].values()) == 1


async def test_deactivating_a_user_ends_their_sessions_and_the_last_admin_stays(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    admin = await signed_in(db_pool, client, org.id, role="admin")
    staff = await signed_in(db_pool, client, org.id, role="staff")
    assert (await staff.call("GET", "/api/v1/me")).status_code == 200
    off = await admin.call("PATCH", f"/api/v1/users/{staff.user_id}", {"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    problem(await staff.call("GET", "/api/v1/me"), 401, "session_expired")

    problem(await admin.call("PATCH", f"/api/v1/users/{admin.user_id}", {"role": "staff"}), 409, "last_admin")
    problem(await admin.call("PATCH", f"/api/v1/users/{admin.user_id}", {"active": False}), 409, "last_admin")
    created = await admin.call("POST", "/api/v1/users", {"email": "second.admin@example.org", "role": "admin",
                                                         "password": "a long enough password"})
    assert created.status_code == 201, created.text
    assert (await admin.call("PATCH", f"/api/v1/users/{admin.user_id}", {"role": "staff"})).json()["role"] == "staff"
    problem(await admin.call("GET", "/api/v1/users"), 403, "admin_only")  # the role applies at once


async def test_new_users_need_a_long_password_and_a_free_address(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    org, other = await api_harness.make_org(db_pool), await api_harness.make_org(db_pool)
    admin = await signed_in(db_pool, client, org.id, role="admin")
    _, taken = await api_harness.make_user(db_pool, other.id)
    short = problem(await admin.call("POST", "/api/v1/users", {"email": "a@example.org", "password": "short"}), 422,
                    "password_weak")
    assert short["errors"][0]["field"] == "password"
    problem(await admin.call("POST", "/api/v1/users", {"email": taken.upper(), "password": "x" * 16}), 409,
            "email_in_use")
    made = await admin.call("POST", "/api/v1/users", {"email": "new.staff@example.org", "name": "New Staff",
                                                      "password": "a long enough password"})
    assert made.status_code == 201 and made.json()["role"] == "staff"
    stored = await db_pool.fetchval("SELECT password_hash FROM users WHERE email = 'new.staff@example.org'")
    assert stored.startswith("$argon2id$") and auth.check_password(stored, "a long enough password").ok


async def test_good_sign_ins_from_one_address_never_use_up_its_limit_and_failures_do(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool
) -> None:
    org = await api_harness.make_org(db_pool)
    async with api_harness.api_app(database_url, kafka_bootstrap, sign_in_max_per_address=3) as app:
        for _ in range(5):  # an office behind one address, each member of staff signing in
            _, email = await api_harness.make_user(db_pool, org.id)
            async with browser_from(app, "198.18.0.7") as browser:
                assert (await submit_sign_in(browser, email, PASSWORD)).status_code == 303
        async with browser_from(app, "198.18.0.7") as browser:
            answers = [(await submit_sign_in(browser, email, f"typo number {i} here")).status_code for i in range(3)]
            assert answers == [401, 401, 401]
            assert (await submit_sign_in(browser, email, PASSWORD)).status_code == 429
