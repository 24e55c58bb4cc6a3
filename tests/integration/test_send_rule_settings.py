"""``/api/v1/settings/send-rules`` on the real database: the organisation's window, days, holidays and marketing
cap, only tighter than the law, and what the dispatcher then reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

RULES = "/api/v1/settings/send-rules"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
GOOD: dict[str, Any] = {"window": {"start": "09:00", "end": "19:30"}, "days": WEEKDAYS,
                        "holidays": ["2026-12-25", "2026-12-24"], "marketing_cap": {"texts": 3, "days": 7}}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@pytest.fixture
async def admin(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await signed_in(db_pool, client, org.id, role="admin")


async def test_a_new_organisation_has_the_laws_hours_alone(admin: Caller) -> None:
    response = await admin.call("GET", RULES)
    assert response.status_code == 200, response.text
    assert response.json() == {"window": None, "days": ["monday", "tuesday", "wednesday", "thursday", "friday",
                                                        "saturday", "sunday"],
                               "holidays": [], "marketing_cap": None, "time_zone": "America/New_York",
                               "law_window": {"start": "08:00", "end": "21:00"}}


async def test_a_tighter_window_is_saved_where_the_dispatcher_reads_it(admin: Caller, db_pool: asyncpg.Pool) -> None:
    response = await admin.call("PUT", RULES, GOOD)
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["window"] == {"start": "09:00", "end": "19:30"}
    assert saved["days"] == WEEKDAYS and saved["holidays"] == ["2026-12-24", "2026-12-25"]
    assert saved["marketing_cap"] == {"texts": 3, "days": 7}
    assert (await admin.call("GET", RULES)).json() == saved
    row = await db_pool.fetchrow("SELECT send_window_start_min, send_window_end_min, send_days, marketing_cap_texts, "
                                 "marketing_cap_days FROM organisations WHERE id = $1", admin.org_id)
    assert tuple(row) == (540, 1170, [0, 1, 2, 3, 4], 3, 7)
    cleared = await admin.call("PUT", RULES, {**GOOD, "window": None, "marketing_cap": None})
    assert cleared.json()["window"] is None and cleared.json()["marketing_cap"] is None
    row = await db_pool.fetchrow("SELECT send_window_start_min, send_window_end_min, marketing_cap_texts "
                                 "FROM organisations WHERE id = $1", admin.org_id)
    assert tuple(row) == (0, 1440, None)


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"window": {"start": "07:30", "end": "19:00"}}, "window", "send_window_wider_than_law"),
    ({"window": {"start": "09:00", "end": "21:30"}}, "window", "send_window_wider_than_law"),
    ({"window": {"start": "12:00", "end": "12:00"}}, "window.end", "send_window_empty"),
    ({"window": {"start": "18:00", "end": "09:00"}}, "window.end", "send_window_empty"),
    ({"days": []}, "days", None),
    ({"days": ["monday", "monday"]}, "days", "send_day_duplicate"),
    ({"days": ["funday"]}, "days.0", None),
    ({"holidays": ["2026-12-25", "2026-12-25"]}, "holidays", "holiday_duplicate"),
    ({"holidays": ["25/12/2026"]}, "holidays.0", None),
    ({"marketing_cap": {"texts": 0, "days": 7}}, "marketing_cap.texts", None),
    ({"marketing_cap": {"texts": 3, "days": 400}}, "marketing_cap.days", None),
    ({"window": {"start": "9am", "end": "19:00"}}, "window.start", None),
    ({"window": {"start": "09:00", "end": "24:00"}}, "window.end", None),
])
async def test_limits_that_would_widen_the_law_or_never_send_are_refused(
    admin: Caller, db_pool: asyncpg.Pool, change: dict[str, Any], field: str, code: str | None
) -> None:
    body = problem(await admin.call("PUT", RULES, {**GOOD, **change}), 422, code or "request_invalid")
    assert [e["field"] for e in body["errors"]] == [field]
    assert (await admin.call("GET", RULES)).json()["window"] is None  # nothing saved


async def test_only_admins_change_the_send_rules(admin: Caller, db_pool: asyncpg.Pool,
                                                 client: httpx.AsyncClient) -> None:
    staff = await signed_in(db_pool, client, admin.org_id)
    assert (await staff.call("GET", RULES)).status_code == 200
    assert (await staff.call("PUT", RULES, GOOD)).status_code == 403
