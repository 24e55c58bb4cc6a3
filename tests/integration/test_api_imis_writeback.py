"""``/api/v1/settings/imis-writeback`` on the real database against iMIS stand-ins over HTTP: the default
target, choosing another, refusing an incomplete choice, and the check saying what iMIS lacks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from harness.credentials import seal_credentials
from harness.factories import make_imis_account
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.imis.parties import NEWSLETTER_COMMUNICATION_TYPE_ID, SMS_COMMUNICATION_TYPE_ID
from standins.serving import ServerThread
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

PATH = "/api/v1/settings/imis-writeback"


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_app(ImisConfig(dataset="small", preexisting_opt_out_every=0))) as server:
        yield server


@pytest.fixture(scope="module")
def imis_without_archive() -> Iterator[ServerThread]:
    config = ImisConfig(dataset="small", preexisting_opt_out_every=0, activity_types=("TEXTUNSUB",), panels=())
    with ServerThread(create_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, imis: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap, public_base_url="http://sms.example.org",
                                      imis_base_url=imis.url) as client:
        yield client


@pytest.fixture
async def admin(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await signed_in(db_pool, client, org.id, role="admin")


async def _new_account(db_pool: asyncpg.Pool, org_id: uuid.UUID, base_url: str | None = None) -> None:
    """An account as Settings or an import creates it: no target named, so the table's default."""
    await db_pool.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) "
                          "VALUES ($1, $2, 'SMS_INTEGRATION', 'standin-password')", org_id, base_url)
    await seal_credentials(db_pool)


async def test_a_new_account_writes_textunsub_and_the_check_finds_both_types(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    await _new_account(db_pool, admin.org_id)
    response = await admin.call("GET", PATH)
    assert response.status_code == 200, response.text
    assert response.json() == {"linked": True, "writeback_enabled": True, "target": "activity",
                               "sms_panel": "TP_SmsPreferences", "sms_communication_type_id": None}
    check = await admin.call("POST", f"{PATH}/check")
    assert check.status_code == 200, check.text
    assert check.json() == {"target": "activity", "ok": True, "missing": [],
                            "found": ["the activity type TEXTUNSUB", "the activity type TEXTUNSUB_A"]}


async def test_the_check_names_what_imis_lacks(
    admin: Caller, db_pool: asyncpg.Pool, imis_without_archive: ServerThread
) -> None:
    await _new_account(db_pool, admin.org_id, base_url=imis_without_archive.url)
    check = (await admin.call("POST", f"{PATH}/check")).json()
    assert (check["ok"], check["found"]) == (False, ["the activity type TEXTUNSUB"])
    assert len(check["missing"]) == 1 and "TEXTUNSUB_A" in check["missing"][0]

    assert (await admin.call("PATCH", PATH, {"target": "panel"})).status_code == 200
    check = (await admin.call("POST", f"{PATH}/check")).json()
    assert check["ok"] is False and "TP_SmsPreferences" in check["missing"][0]


async def test_choosing_the_preference_needs_a_communication_type_that_imis_has(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    await make_imis_account(db_pool, admin.org_id, writeback_target="panel")
    refused = await admin.call("PATCH", PATH, {"target": "preference"})
    problem(refused, 422, "value_required")
    assert (await admin.call("GET", PATH)).json()["target"] == "panel"  # nothing changed
    problem(await admin.call("PATCH", PATH, {"sms_communication_type_id": "not-a-guid"}), 422, "request_invalid")
    problem(await admin.call("PATCH", PATH, {"target": "textunsub"}), 422, "request_invalid")

    unknown = "00000000-0000-4000-8000-000000000000"
    chosen = await admin.call("PATCH", PATH, {"target": "preference", "sms_communication_type_id": unknown})
    assert chosen.status_code == 200 and chosen.json()["target"] == "preference"
    check = (await admin.call("POST", f"{PATH}/check")).json()
    assert check["ok"] is False and unknown in check["missing"][0]
    assert SMS_COMMUNICATION_TYPE_ID in check["missing"][0]  # says what iMIS offers instead

    await admin.call("PATCH", PATH, {"sms_communication_type_id": SMS_COMMUNICATION_TYPE_ID.upper()})
    check = (await admin.call("POST", f"{PATH}/check")).json()
    assert check == {"target": "preference", "ok": True, "missing": [],
                     "found": [f"the communication type Text messages (SMS) ({SMS_COMMUNICATION_TYPE_ID.upper()})"]}
    assert NEWSLETTER_COMMUNICATION_TYPE_ID not in str(check)
    audited = await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE org_id = $1 "
                                     "AND action = 'settings.imis_writeback_changed'", admin.org_id)
    assert audited == 2


async def test_without_an_imis_account_or_a_reachable_imis(admin: Caller, db_pool: asyncpg.Pool) -> None:
    problem(await admin.call("PATCH", PATH, {"target": "panel"}), 404, "imis_account_missing")
    problem(await admin.call("POST", f"{PATH}/check"), 404, "imis_account_missing")
    assert (await admin.call("GET", PATH)).json() == {"linked": False, "writeback_enabled": False, "target": None,
                                                      "sms_panel": None, "sms_communication_type_id": None}
    await _new_account(db_pool, admin.org_id, base_url="http://127.0.0.1:9")  # nothing listens there
    problem(await admin.call("POST", f"{PATH}/check"), 503, "imis_unavailable")


async def test_staff_may_not_see_or_change_it(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    org = await api_harness.make_org(db_pool)
    staff = await signed_in(db_pool, client, org.id, role="staff")
    assert (await staff.call("GET", PATH)).status_code == 403
    assert (await staff.call("PATCH", PATH, {"target": "panel"})).status_code == 403


async def test_the_settings_page_shows_the_chosen_target(admin: Caller, db_pool: asyncpg.Pool) -> None:
    page = await admin.call("GET", "/settings", Accept="text/html")
    assert page.status_code == 200 and "No iMIS site is set up" in page.text
    await make_imis_account(db_pool, admin.org_id, writeback_target="panel")
    page = await admin.call("GET", "/settings", Accept="text/html")
    assert 'data-url="/api/v1/settings/imis-writeback"' in page.text and "data-imis-check" in page.text
    assert 'value="panel" checked' in page.text and 'value="activity" checked' not in page.text
