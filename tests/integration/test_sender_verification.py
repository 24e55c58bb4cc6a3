"""``/api/v1/senders/{id}/verification`` on the real database against the Twilio stand-in: a restricted
number submitted, reviewed and approved; a rejected one resubmitted within its edit window; bad forms and
non-toll-free senders refused with nothing sent; the scheduled refresh."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.credentials import TEST_SECRETS
from harness.dispatch import TwilioStandin
from harness.processes import wait_http
from services.api.routes.sender_verification import refresh_due
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

TOKEN = "0123456789abcdef0123456789abcdef"
RESTRICTED, REJECTED, APPROVED = "+18885550104", "+18885550105", "+18885550100"
SIDS = iter("AC" + f"{n:02x}" * 16 for n in range(0x20, 0x30))
ACCOUNTS = [{"account_sid": "AC" + f"{n:02x}" * 16, "auth_token": TOKEN} for n in range(0x20, 0x30)]
NUMBERS = [{"phone_number": APPROVED}, {"phone_number": RESTRICTED, "verification": "restricted"},
           {"phone_number": REJECTED, "verification": "rejected"}]


def form(**changes: Any) -> dict[str, Any]:
    return {"business_name": "Ohio Nurses Association", "business_website": "https://ona.example.org",
            "notification_email": "compliance@ona.example.org",
            "use_case_categories": ["CHARITY_NONPROFIT", "ACCOUNT_NOTIFICATIONS"],
            "use_case_summary": "Renewal reminders and event news for members who opted in on their profile.",
            "production_message_sample": "ONA: your membership renews 1 July. Reply STOP to opt out.",
            "opt_in_type": "WEB_FORM", "opt_in_image_urls": ["https://ona.example.org/opt-in-profile.png"],
            "message_volume": "10,000", "privacy_policy_url": "https://ona.example.org/privacy"} | changes


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [],
                           extra_config={"other_accounts": ACCOUNTS, "numbers": NUMBERS})
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, standin: TwilioStandin) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap, public_base_url="http://sms.example.org",
                                      twilio_api_base_url=standin.url) as client:
        yield client


@pytest.fixture
async def control(standin: TwilioStandin) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{standin.url}/_control", timeout=30) as c:
        await c.post("/reset")
        yield c


async def linked_admin(pool: asyncpg.Pool, client: httpx.AsyncClient, sender: str) -> tuple[Caller, uuid.UUID]:
    org = await api_harness.make_org(pool, sender=sender)
    await pool.execute("UPDATE organisations SET alert_emails = '{ops@ona.example.org}' WHERE id = $1", org.id)
    admin = await signed_in(pool, client, org.id, role="admin")
    linked = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                              {"account_sid": next(SIDS), "auth_token": TOKEN})
    assert linked.status_code == 200, linked.text
    return admin, org.sender_id


async def twilio_records(standin: TwilioStandin) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=standin.url, auth=(ACCOUNTS[0]["account_sid"], TOKEN)) as twilio:
        records: list[dict[str, Any]] = (await twilio.get("/v1/Tollfree/Verifications")).json()["verifications"]
        return records


async def test_a_restricted_number_is_submitted_reviewed_and_approved(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, control: httpx.AsyncClient, standin: TwilioStandin
) -> None:
    admin, sender_id = await linked_admin(db_pool, client, RESTRICTED)
    path = f"/api/v1/senders/{sender_id}/verification"

    unchecked = (await admin.call("GET", path)).json()
    refreshed = (await admin.call("POST", f"{path}/refresh")).json()
    bad = await admin.call("POST", path, form(opt_in_image_urls=[], opt_in_type="SMOKE_SIGNALS"))
    before = await twilio_records(standin)
    submitted = await admin.call("POST", path, form())

    assert unchecked["status"] is None and unchecked["form"]["notification_email"] == "ops@ona.example.org"
    assert unchecked["form"]["business_name"].startswith("Org ")
    assert (refreshed["status"], refreshed["verification"], refreshed["can_submit"]) == (
        "NOT_SUBMITTED", "restricted", True)
    fields = {e["field"] for e in problem(bad, 422, "request_invalid")["errors"]}
    assert {"opt_in_image_urls", "opt_in_type"} <= {f.split(".")[-1] for f in fields}, fields
    assert RESTRICTED not in {r["tollfree_phone_number"] for r in before}  # nothing reached Twilio
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert (body["status"], body["verification"], body["can_submit"]) == ("PENDING_REVIEW", "pending", False)
    assert body["form"]["opt_in_image_urls"] == ["https://ona.example.org/opt-in-profile.png"]
    (record,) = [r for r in await twilio_records(standin) if r["tollfree_phone_number"] == RESTRICTED]
    assert record["use_case_categories"] == ["CHARITY_NONPROFIT", "ACCOUNT_NOTIFICATIONS"]
    assert record["privacy_policy_url"] == "https://ona.example.org/privacy"

    await control.put(f"/verifications/{RESTRICTED}", json={"status": "TWILIO_APPROVED"})
    approved = (await admin.call("POST", f"{path}/refresh")).json()
    again = await admin.call("POST", path, form())

    assert (approved["status"], approved["verification"]) == ("TWILIO_APPROVED", "verified")
    assert await db_pool.fetchval("SELECT verification FROM senders WHERE id = $1", sender_id) == "verified"
    problem(again, 422, "verification_not_editable")


async def test_a_rejected_number_shows_why_and_is_resubmitted_within_its_edit_window(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    admin, sender_id = await linked_admin(db_pool, client, REJECTED)
    path = f"/api/v1/senders/{sender_id}/verification"
    await control.put(f"/verifications/{REJECTED}", json={
        "status": "TWILIO_REJECTED", "rejection_reason": "Opt-in image does not show the consent language.",
        "error_code": 30509})

    rejected = (await admin.call("POST", f"{path}/refresh")).json()
    resubmitted = await admin.call("POST", path, form(opt_in_image_urls=["https://ona.example.org/v2.png"]))

    assert (rejected["status"], rejected["verification"], rejected["error_code"]) == (
        "TWILIO_REJECTED", "rejected", 30509)
    assert rejected["rejection_reasons"] == [{"reason": "Opt-in image does not show the consent language.",
                                             "error_code": 30509}]
    assert rejected["edit_allowed"] and rejected["edit_expiration"] and rejected["can_submit"]
    assert resubmitted.status_code == 200, resubmitted.text
    assert (resubmitted.json()["status"], resubmitted.json()["rejection_reason"]) == ("PENDING_REVIEW", None)
    audit = await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = $2",
                                   admin.org_id, "sender.verification_submitted")
    assert audit == 1


async def test_other_senders_and_unlinked_accounts_are_refused(db_pool: asyncpg.Pool,
                                                               client: httpx.AsyncClient) -> None:
    admin, _ = await linked_admin(db_pool, client, APPROVED)
    service = await factories.make_sender(db_pool, admin.org_id, "MG" + "a" * 32, kind="messaging_service")
    org = await api_harness.make_org(db_pool, sender=RESTRICTED)
    unlinked = await signed_in(db_pool, client, org.id, role="admin")
    staff = await signed_in(db_pool, client, admin.org_id)

    problem(await admin.call("POST", f"/api/v1/senders/{service}/verification", form()), 422, "sender_not_toll_free")
    problem(await admin.call("GET", f"/api/v1/senders/{uuid.uuid4()}/verification"), 404, "sender_not_found")
    problem(await unlinked.call("POST", f"/api/v1/senders/{org.sender_id}/verification/refresh"), 404,
            "sms_account_missing")
    assert (await staff.call("GET", f"/api/v1/senders/{service}/verification")).status_code == 403


async def test_the_scheduled_refresh_follows_twilio(db_pool: asyncpg.Pool, client: httpx.AsyncClient,
                                                    control: httpx.AsyncClient, standin: TwilioStandin) -> None:
    admin, sender_id = await linked_admin(db_pool, client, REJECTED)
    await control.put(f"/verifications/{REJECTED}", json={"status": "TWILIO_APPROVED"})

    checked = await refresh_due(db_pool, TEST_SECRETS, standin.url, max_age_s=3600, limit=10_000)
    row = await db_pool.fetchrow("SELECT status, checked_at FROM sender_verifications WHERE sender_id = $1", sender_id)
    await control.put(f"/verifications/{REJECTED}", json={"status": "TWILIO_REJECTED"})
    await refresh_due(db_pool, TEST_SECRETS, standin.url, max_age_s=3600, limit=10_000)
    fresh = await db_pool.fetchval("SELECT status FROM sender_verifications WHERE sender_id = $1", sender_id)

    assert checked >= 1 and row is not None and row["status"] == "TWILIO_APPROVED"
    assert (await admin.call("GET", f"/api/v1/senders/{sender_id}/verification")).json()["verification"] == "verified"
    assert fresh == "TWILIO_APPROVED"  # checked within the hour: not asked again yet
