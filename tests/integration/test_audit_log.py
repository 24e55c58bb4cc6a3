"""The audit log on the real database: each audited action writes its row (actor, client address, redacted
before and after) in the transaction of the change; the table refuses UPDATE, DELETE and TRUNCATE; only
admins read and export it."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from harness.factories import PASSWORD
from tests.integration import api_harness
from tests.integration.api_harness import Caller, idempotency_key, problem, signed_in, with_api_key

ADDRESS = "203.0.113.7"  # every request here comes from this client address
API_KEY_SECRET = "an-api-key-secret-nobody-may-read"


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client (it keeps cookies) at ADDRESS."""
    transport = httpx.ASGITransport(app=app, client=(ADDRESS, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@pytest.fixture
async def org(db_pool: asyncpg.Pool) -> api_harness.Org:
    return await api_harness.make_org(db_pool, max_segments=100_000)  # with a linked Twilio account


@pytest.fixture
async def admin(db_pool: asyncpg.Pool, client: httpx.AsyncClient, org: api_harness.Org) -> Caller:
    return await signed_in(db_pool, client, org.id, role="admin")


async def events(pool: asyncpg.Pool, org_id: uuid.UUID, action: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("""SELECT actor, actor_kind, action, target_type, target_id, before, after,
                                      client_address, detail, CAST(to_jsonb(e) AS text) AS whole
                               FROM audit_events e WHERE org_id = $1 AND action = $2 ORDER BY id""", org_id, action)
    return [dict(r) for r in rows]


async def only(pool: asyncpg.Pool, org_id: uuid.UUID, action: str) -> dict[str, Any]:
    rows = await events(pool, org_id, action)
    assert len(rows) == 1, rows
    return rows[0]


def decoded(value: str | None) -> Any:
    return None if value is None else json.loads(value)


async def submit_sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    form = await client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    return await client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token.group(1)})


# ---------------------------------------------------------------------------------------------


async def test_a_sign_in_a_failed_sign_in_and_a_sign_out_are_recorded_with_the_address(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, org: api_harness.Org
) -> None:
    user_id, email = await api_harness.make_user(db_pool, org.id)

    assert (await submit_sign_in(client, email, "not the password")).status_code == 401
    assert (await submit_sign_in(client, "nobody-at-all@example.org", "whatever")).status_code == 401
    assert (await submit_sign_in(client, email, PASSWORD)).status_code == 303
    me = await client.get("/", headers={"Accept": "text/html"})  # a page: the session's CSRF token is in it
    assert me.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', me.text)
    assert csrf is not None, me.text
    assert (await client.post("/sign-out", data={"csrf_token": csrf.group(1)})).status_code == 303

    failed = await only(db_pool, org.id, "session.sign_in_failed")
    assert (failed["actor"], failed["actor_kind"], failed["client_address"]) == (email, "user", ADDRESS)
    assert failed["target_id"] == str(user_id) and decoded(failed["detail"]) == {"reason": "wrong_password"}
    assert "not the password" not in failed["whole"]
    for action in ("session.signed_in", "session.signed_out"):
        row = await only(db_pool, org.id, action)
        assert (row["actor"], row["client_address"], row["target_id"]) == (email, ADDRESS, str(user_id))
    # An address that matches no account belongs to no organisation's log.
    assert await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE actor = 'nobody-at-all@example.org'") == 0


async def test_a_key_created_and_revoked_is_recorded_without_the_key(db_pool: asyncpg.Pool, admin: Caller) -> None:
    created = await admin.call("POST", "/api/v1/api-keys", {"name": "Nightly sync", "role": "staff"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert (await admin.call("DELETE", f"/api/v1/api-keys/{created.json()['id']}")).status_code == 200

    row = await only(db_pool, admin.org_id, "api_key.created")
    assert (row["actor"], row["actor_kind"], row["client_address"]) == (admin.actor, "user", ADDRESS)
    assert row["target_id"] == created.json()["id"] and decoded(row["after"])["name"] == "Nightly sync"
    assert key not in row["whole"] and key.removeprefix("tpk_") not in row["whole"]
    assert decoded((await only(db_pool, admin.org_id, "api_key.revoked"))["after"])["revoked_at"] is not None


async def test_a_user_changed_is_recorded_before_and_after(db_pool: asyncpg.Pool, admin: Caller) -> None:
    user_id, _ = await api_harness.make_user(db_pool, admin.org_id)
    assert (await admin.call("PATCH", f"/api/v1/users/{user_id}", {"role": "admin"})).status_code == 200
    assert (await admin.call("PUT", f"/api/v1/users/{user_id}/password",
                             {"password": "another long passphrase"})).status_code == 204

    changed = await only(db_pool, admin.org_id, "user.changed")
    assert decoded(changed["before"])["role"] == "staff" and decoded(changed["after"])["role"] == "admin"
    password_set = await only(db_pool, admin.org_id, "user.password_set")
    assert "another long passphrase" not in password_set["whole"]


async def test_a_setting_changed_is_recorded_and_a_secret_never_is(db_pool: asyncpg.Pool, admin: Caller) -> None:
    changed = await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+44"})
    assert changed.status_code == 200, changed.text
    key = await admin.call("PUT", "/api/v1/settings/sms-account/api-key",
                           {"api_key_sid": "SK" + "c" * 32, "api_key_secret": API_KEY_SECRET})
    assert key.status_code == 200, key.text

    country = await only(db_pool, admin.org_id, "settings.country_changed")
    assert (country["actor"], country["client_address"]) == (admin.actor, ADDRESS)
    assert decoded(country["before"])["country"]["default_country_prefix"] == "+1"
    assert decoded(country["after"])["country"]["default_country_prefix"] == "+44"
    api_key = await only(db_pool, admin.org_id, "settings.twilio_api_key_set")
    assert API_KEY_SECRET not in api_key["whole"]
    assert decoded(api_key["before"]) != decoded(api_key["after"])


async def test_a_suppression_added_lifted_and_exported_is_recorded(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, admin: Caller
) -> None:
    body = {"phone": "+12025550143", "reason": "asked by phone"}
    assert (await admin.call("POST", "/api/v1/suppressions", body)).status_code == 200
    assert (await admin.call("POST", "/api/v1/suppressions/lift", body | {"reason": "rejoined"})).status_code == 200
    staff = await signed_in(db_pool, client, admin.org_id)
    exported = await staff.call("GET", "/api/v1/suppressions/export.csv")
    assert exported.status_code == 200 and "phone,scope" in exported.text

    added = await only(db_pool, admin.org_id, "suppression.added")
    assert (added["target_type"], added["target_id"], decoded(added["after"])) == (
        "phone", "+12025550143", {"scope": "", "changed": True})
    lifted = await only(db_pool, admin.org_id, "suppression.lifted")
    assert (lifted["actor"], lifted["client_address"]) == (admin.actor, ADDRESS)
    assert decoded(lifted["after"]) == {"lifted_scopes": [""]} and decoded(lifted["detail"])["reason"] == "rejoined"
    export = await only(db_pool, admin.org_id, "suppressions.exported")
    assert (export["actor"], export["actor_kind"], export["client_address"]) == (staff.actor, "user", ADDRESS)


async def test_a_send_now_by_an_api_key_is_recorded_with_the_states(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, org: api_harness.Org
) -> None:
    integration = await with_api_key(db_pool, client, org.id, name="Renewals bot")
    draft = await integration.call("POST", "/api/v1/campaigns", {"name": "Renewals", "body": "Renew today.",
                                                                 "audience": {"kind": "iqa", "query": "$/Members/All"}})
    assert draft.status_code == 201, draft.text
    campaign_id = draft.json()["id"]
    started = await integration.call("POST", f"/api/v1/campaigns/{campaign_id}/send-now", **idempotency_key())
    assert started.status_code == 202, started.text
    assert (await integration.call("POST", f"/api/v1/campaigns/{campaign_id}/pause")).status_code == 200

    sent = await only(db_pool, org.id, "campaign.sent_now")
    assert (sent["actor"], sent["actor_kind"], sent["client_address"]) == ("api-key:Renewals bot", "api_key", ADDRESS)
    assert (sent["target_type"], sent["target_id"]) == ("campaign", campaign_id)
    assert (decoded(sent["before"]), decoded(sent["after"])) == ({"state": "draft"}, {"state": "sending"})
    assert decoded(sent["detail"])["run_id"] == started.json()["run"]["id"]
    paused = await only(db_pool, org.id, "campaign.paused")
    assert decoded(paused["after"]) == {"state": "paused"}
    # The campaign's own history still has its rows.
    history = await db_pool.fetch("SELECT action FROM campaign_audit WHERE campaign_id = $1 ORDER BY id",
                                  uuid.UUID(campaign_id))
    assert [r["action"] for r in history] == ["created", "sent_now", "paused"]


async def test_a_campaign_created_edited_duplicated_and_deleted_is_recorded(
    db_pool: asyncpg.Pool, admin: Caller
) -> None:
    audience = {"kind": "iqa", "query": "$/Members/Chapter", "parameters": ["Leeds"]}
    draft = await admin.call("POST", "/api/v1/campaigns", {"name": "AGM", "body": "AGM at 6.", "audience": audience})
    assert draft.status_code == 201, draft.text
    campaign_id = draft.json()["id"]
    edited = await admin.call("PATCH", f"/api/v1/campaigns/{campaign_id}", {"body": "AGM at 7."})
    assert edited.status_code == 200, edited.text
    copy = await admin.call("POST", f"/api/v1/campaigns/{campaign_id}/duplicate")
    assert copy.status_code == 201, copy.text
    assert (await admin.call("DELETE", f"/api/v1/campaigns/{copy.json()['id']}")).status_code == 204

    created = await only(db_pool, admin.org_id, "campaign.created")
    assert (created["actor"], created["client_address"], created["target_id"]) == (admin.actor, ADDRESS, campaign_id)
    assert decoded(created["after"]) == {"state": "draft"} and decoded(created["detail"])["name"] == "AGM"
    assert decoded((await only(db_pool, admin.org_id, "campaign.edited"))["detail"]) == {"fields": ["body"]}
    duplicated = await only(db_pool, admin.org_id, "campaign.duplicated")
    assert (duplicated["target_id"], decoded(duplicated["detail"])) == (copy.json()["id"], {"from": campaign_id})
    deleted = await only(db_pool, admin.org_id, "campaign.deleted")
    assert deleted["target_id"] == copy.json()["id"]
    assert decoded(deleted["before"]) == {"name": copy.json()["name"], "state": "draft"}


async def test_downloading_an_uploads_rejected_rows_is_recorded(db_pool: asyncpg.Pool, admin: Caller) -> None:
    data = b"Member ID,Cell Phone\r\n1,(415) 555-0101\r\n2,12\r\n"
    uploaded = await admin.client.post("/api/v1/audiences/csv", files={"file": ("m.csv", data, "text/csv")},
                                       headers=admin.headers)
    assert uploaded.status_code == 201, uploaded.text
    report = await admin.call("GET", uploaded.json()["rejections_url"])
    assert report.status_code == 200, report.text

    exported = await only(db_pool, admin.org_id, "upload_rejections.exported")
    assert (exported["target_type"], exported["target_id"]) == ("upload", uploaded.json()["id"])
    assert decoded(exported["detail"]) == {"rows": 1}


async def test_the_table_refuses_update_delete_and_truncate(db_pool: asyncpg.Pool, admin: Caller) -> None:
    assert (await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+44"})).status_code == 200
    statements = ["UPDATE audit_events SET actor = 'someone else' WHERE org_id = $1",
                  "DELETE FROM audit_events WHERE org_id = $1"]
    for statement in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db_pool.execute(statement, admin.org_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db_pool.execute("TRUNCATE audit_events")
    assert (await only(db_pool, admin.org_id, "settings.country_changed"))["actor"] == admin.actor


async def test_deleting_an_organisation_takes_its_log_with_it(db_pool: asyncpg.Pool, admin: Caller) -> None:
    assert (await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+44"})).status_code == 200
    await db_pool.execute("DELETE FROM organisations WHERE id = $1", admin.org_id)
    assert await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE org_id = $1", admin.org_id) == 0


async def test_staff_and_staff_keys_get_403_on_the_log(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, org: api_harness.Org
) -> None:
    for caller in (await signed_in(db_pool, client, org.id), await with_api_key(db_pool, client, org.id)):
        for path in ("/api/v1/audit-events", "/api/v1/audit-events/export.csv"):
            problem(await caller.call("GET", path), 403, "admin_only")


async def test_admins_filter_and_page_the_log(db_pool: asyncpg.Pool, admin: Caller) -> None:
    for prefix in ("+44", "+1", "+44"):
        assert (await admin.call("PATCH", "/api/v1/settings/country",
                                 {"default_country_prefix": prefix})).status_code == 200
    assert (await admin.call("POST", "/api/v1/settings/test-numbers",
                             {"phone": "+12025550177", "label": "Office"})).status_code == 200

    page = await admin.call("GET", "/api/v1/audit-events?action=settings.country_changed&limit=2")
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == 3 and len(body["items"]) == 2
    assert [i["after"]["country"]["default_country_prefix"] for i in body["items"]] == ["+44", "+1"]  # newest first
    assert {"settings.country_changed", "test_number.added"} <= set(body["actions"])
    assert (await admin.call("GET", f"/api/v1/audit-events?actor={admin.actor}")).json()["total"] == 4
    assert (await admin.call("GET", "/api/v1/audit-events?actor=someone-else@example.org")).json()["total"] == 0
    today = date.today()
    around = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    assert (await admin.call("GET", f"/api/v1/audit-events?{around}")).json()["total"] == 4
    later = f"from={today + timedelta(days=2)}"
    assert (await admin.call("GET", f"/api/v1/audit-events?{later}")).json()["total"] == 0

    reversed_range = await admin.call("GET", f"/api/v1/audit-events?from={today}&to={today - timedelta(days=1)}")
    assert "to" in problem(reversed_range, 422, "date_range_reversed")["detail"]
    bad_date = problem(await admin.call("GET", "/api/v1/audit-events?from=yesterday"), 422, "request_invalid")
    assert "from" in str(bad_date["errors"])


async def test_the_csv_export_quotes_cells_a_spreadsheet_would_run_and_is_itself_recorded(
    db_pool: asyncpg.Pool, admin: Caller
) -> None:
    assert (await admin.call("POST", "/api/v1/settings/test-numbers",
                             {"phone": "+12025550177", "label": "=HYPERLINK(\"http://evil\")"})).status_code == 200
    assert (await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+44"})).status_code == 200

    exported = await admin.call("GET", "/api/v1/audit-events/export.csv?action=test_number.added")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="audit-log.csv"' in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1
    assert rows[0]["action"] == "test_number.added" and rows[0]["client_address"] == ADDRESS
    assert rows[0]["target_id"] == "'+12025550177"  # a leading + would be read as a formula
    assert '"label": "=HYPERLINK' in rows[0]["after"] and rows[0]["after"].startswith("{")
    recorded = await only(db_pool, admin.org_id, "audit_events.exported")
    assert decoded(recorded["detail"]) == {"action": "test_number.added"}


async def test_the_settings_page_shows_the_log_filtered_with_an_export_link(
    db_pool: asyncpg.Pool, admin: Caller
) -> None:
    assert (await admin.call("PATCH", "/api/v1/settings/country", {"default_country_prefix": "+44"})).status_code == 200
    assert (await admin.call("POST", "/api/v1/settings/test-numbers",
                             {"phone": "+12025550177", "label": "Office"})).status_code == 200

    page = await admin.client.get("/settings?action=test_number.added", headers=admin.headers | {"Accept": "text/html"})
    assert page.status_code == 200, page.text
    table = page.text.split('id="audit-events"', 1)[1].split("</table>", 1)[0]
    assert "test_number.added" in table and "+12025550177" in table and ADDRESS in table
    assert "settings.country_changed" not in table
    assert 'href="/api/v1/audit-events/export.csv?action=test_number.added"' in page.text
    assert '<option value="settings.country_changed" >' in page.text  # offered, not chosen
    assert '<option value="test_number.added" selected>' in page.text
    assert "1 matching event." in page.text
