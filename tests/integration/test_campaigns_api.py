"""``/api/v1/campaigns`` through the real app (``services.api.main.build``) on the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from tests.integration import api_harness
from tests.integration.api_harness import idempotency_key, problem


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@dataclass
class Org:
    """An organisation and one of its staff, signed in: requests carry the session cookie and CSRF token."""

    id: uuid.UUID
    sender_id: uuid.UUID
    client: httpx.AsyncClient
    caller: api_harness.Caller

    @property
    def email(self) -> str:
        return self.caller.actor

    async def call(self, method: str, path: str, json: Any = None, **headers: str) -> httpx.Response:
        return await self.caller.call(method, "/api/v1/campaigns" + path, json, **headers)

    async def draft(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Renewals", "body": "Hi {{first_name|there}}, your membership renews soon.",
                "audience": {"kind": "iqa", "query": "$/Members/Renewals"}} | fields
        response = await self.call("POST", "", body)
        assert response.status_code == 201, response.text
        return response.json()


async def make_org(pool: asyncpg.Pool, client: httpx.AsyncClient, *, max_segments: int | None = None) -> Org:
    org = await api_harness.make_org(pool, max_segments=max_segments)
    caller = await api_harness.signed_in(pool, client, org.id)
    return Org(org.id, org.sender_id, client, caller)


@pytest.fixture
async def org(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Org:
    return await make_org(db_pool, client)


def next_week_at(hour: int) -> str:
    return (datetime.now(UTC) + timedelta(days=7)).strftime(f"%Y-%m-%dT{hour:02d}:00")


# ---------------------------------------------------------------------------------------------


async def test_a_campaign_is_marked_transactional_with_its_hold_limit(org: Org, db_pool: asyncpg.Pool) -> None:
    created = await org.draft()
    assert (created["transactional"], created["hold_limit_s"]) == (False, 86_400)
    edited = (await org.call("PATCH", f"/{created['id']}", {"transactional": True, "hold_limit_s": 7200})).json()
    assert (edited["transactional"], edited["hold_limit_s"]) == (True, 7200)
    stored = await db_pool.fetchrow("SELECT transactional, hold_limit_s FROM campaigns WHERE id = $1",
                                    uuid.UUID(created["id"]))
    assert tuple(stored) == (True, 7200)
    copy = (await org.call("POST", f"/{created['id']}/duplicate")).json()
    assert (copy["transactional"], copy["hold_limit_s"]) == (True, 7200)
    storm = await org.draft(transactional=True, hold_limit_s=0)
    assert (storm["transactional"], storm["hold_limit_s"]) == (True, 0)
    for bad in ({"hold_limit_s": -1}, {"hold_limit_s": 604_801}, {"transactional": None}, {"hold_limit_s": "a day"}):
        body = problem(await org.call("PATCH", f"/{created['id']}", bad), 422, "request_invalid")
        assert [e["field"] for e in body["errors"]] == list(bad)


async def test_a_draft_is_created_read_edited_and_deleted(org: Org) -> None:
    created = await org.draft()
    assert created["state"] == "draft" and created["schedule"] == {"kind": "none"}
    assert created["segment_limit"] == 20_000 == created["effective_segment_limit"]
    assert created["created_by"] == org.email and created["warnings"] == []
    assert created["actions"] == ["edit", "delete", "schedule", "send_now", "duplicate"]  # Delete, not Cancel
    path = f"/{created['id']}"

    edited = await org.call("PATCH", path, {"name": "Renewal reminder", "contact_email": "office@example.org",
                                            "sender_id": str(org.sender_id)})
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "Renewal reminder" and edited.json()["body"] == created["body"]
    assert (await org.call("PATCH", path, {"sender_id": None})).json()["sender_id"] is None

    assert (await org.call("GET", path)).json()["contact_email"] == "office@example.org"
    assert (await org.call("DELETE", path)).status_code == 204
    problem(await org.call("GET", path), 404, "campaign_not_found")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"name": "  "}, "name", "string_too_short"),
        ({"nmae": "typo"}, "nmae", "extra_forbidden"),
        ({"body": "Hi {{frist_name}}"}, "body", "merge_unknown_field"),
        ({"body": "Hi {{first_name"}, "body", "merge_unbalanced_braces"),
        ({"body": "bell \x07"}, "body", "body_control_char"),
        ({"body": "x" * 1601}, "body", "body_too_long"),
        ({"sender_id": str(uuid.uuid4())}, "sender_id", "sender_not_owned"),
        ({"contact_email": "not an address"}, "contact_email", "string_pattern_mismatch"),
        ({"segment_limit": 0}, "segment_limit", "greater_than"),
        ({"audience": {"kind": "carrier pigeon"}}, "audience", "audience_kind_invalid"),
        ({"audience": {"kind": "iqa", "query": "$/Members", "params": ["eq:AK"]}}, "audience.params",
         "extra_forbidden"),
        ({"max_lateness_s": 5}, "max_lateness_s", "greater_than_equal"),
        ({"body": "Files: ftp://files.example.org/agm.pdf", "track_links": True}, "body", "link_scheme_invalid"),
        ({"body": "Vote: https://bad_host!/x", "track_links": True}, "body", "link_invalid"),
    ],
)
async def test_bad_campaign_fields_are_refused_naming_the_field(
    org: Org, db_pool: asyncpg.Pool, fields: dict[str, Any], field: str, code: str
) -> None:
    response = await org.call("POST", "", {"name": "Renewals"} | fields)
    # Our own checks answer with their code; FastAPI's schema checks with request_invalid.
    ours = code.startswith(("merge_", "body_", "sender_", "link_"))
    body = problem(response, 422, code if ours else "request_invalid")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [(field, code)]
    assert field in body["detail"]
    assert await db_pool.fetchval("SELECT count(*) FROM campaigns WHERE org_id = $1", org.id) == 0


async def test_tracking_is_saved_and_frozen_into_each_run(org: Org, db_pool: asyncpg.Pool) -> None:
    created = await org.call("POST", "", {"name": "AGM", "body": "Vote: https://example.org/agm", "track_links": True})
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["track_links"] is True
    # An untracked body may hold any text that looks like a link; turning tracking on checks it.
    edited = await org.call("PATCH", f"/{campaign['id']}", {"track_links": False, "body": "ftp://x.org/a"})
    assert edited.status_code == 200 and edited.json()["track_links"] is False
    refused = await org.call("PATCH", f"/{campaign['id']}", {"track_links": True})
    assert problem(refused, 422, "link_scheme_invalid")["errors"][0]["field"] == "body"
    await org.call("PATCH", f"/{campaign['id']}", {"track_links": True, "body": "Vote: https://example.org/agm"})
    run = await factories.make_run(db_pool, org.id, uuid.UUID(campaign["id"]))
    await db_pool.execute("UPDATE campaigns SET track_links = false WHERE id = $1", uuid.UUID(campaign["id"]))
    assert await db_pool.fetchval("SELECT track_links FROM campaign_runs WHERE id = $1", run) is True


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "  "}, "name", "Campaign name is required."),
        ({"name": "x" * 201}, "name", "Campaign name must be at most 200 characters."),
        ({"contact_email": "not an address"}, "contact_email",
         "Contact email must be an e-mail address, like name@example.org."),
        ({"segment_limit": "lots"}, "segment_limit", "Segment limit must be a whole number."),
        ({"segment_limit": 0}, "segment_limit", "Segment limit must be more than 0."),
        ({"audience": {"kind": "carrier pigeon"}}, "audience",
         'Audience kind must be "iqa" (an iMIS query), "list" or "csv".'),
        ({"audience": {"kind": "iqa", "query": "Members"}}, "audience.query",
         "Audience query must be an IQA query path starting with $/."),
        ({"nmae": "typo"}, "nmae", "Nmae is not a field this request takes."),
    ],
)
async def test_a_refused_field_is_explained_in_plain_words(
    org: Org, fields: dict[str, Any], field: str, message: str
) -> None:
    body = problem(await org.call("POST", "", {"name": "Renewals"} | fields), 422, "request_invalid")
    assert [(e["field"], e["message"]) for e in body["errors"]] == [(field, message)]
    assert "should" not in body["detail"] and "Input" not in body["detail"]


async def test_a_body_that_is_not_json_says_so_and_names_no_field(org: Org) -> None:
    response = await org.client.post("/api/v1/campaigns", content=b'{"name": "Renewals", "body": ',
                                     headers={**org.caller.headers, "Content-Type": "application/json"})
    body = problem(response, 422, "request_invalid")
    assert body["errors"] == [{"field": "", "code": "json_invalid", "message": "The request body is not valid JSON."}]
    assert body["detail"] == "The request body is not valid JSON."


async def test_a_missing_name_is_required_by_name(org: Org) -> None:
    body = problem(await org.call("POST", "", {"body": "Hello"}), 422, "request_invalid")
    assert body["errors"] == [{"field": "name", "code": "missing", "message": "Campaign name is required."}]


async def test_an_edit_may_not_null_a_required_field_or_use_another_orgs_sender(
    org: Org, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    other = await make_org(db_pool, client)
    path = f"/{(await org.draft())['id']}"
    assert problem(await org.call("PATCH", path, {"name": None}), 422, "request_invalid")["errors"] == [
        {"field": "name", "code": "value_error", "message": "Campaign name may not be null."}]
    refused = problem(await org.call("PATCH", path, {"sender_id": str(other.sender_id)}), 422, "sender_not_owned")
    assert refused["errors"][0]["field"] == "sender_id"


async def test_bad_schedules_are_refused_naming_the_field_and_nothing_is_saved(org: Org) -> None:
    campaign = await org.draft()
    path = f"/{campaign['id']}/schedule"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT09:00")
    cases = [
        ({"at": yesterday}, "at", "schedule_in_past"),
        ({"at": "next tuesday"}, "at", "datetime_from_date_parsing"),
        ({}, "at", "schedule_missing"),
        ({"at": next_week_at(9), "rrule": "FREQ=DAILY"}, "at", "schedule_ambiguous"),
        ({"rrule": "FREQ=DAILY"}, "start", "start_missing"),
        ({"rrule": "FREQ=MINUTELY", "start": next_week_at(9)}, "rrule", "rrule_too_frequent"),
        ({"rrule": "FREQ=HOURLY;BYMINUTE=0,30", "start": next_week_at(9)}, "rrule", "rrule_too_frequent"),
        ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "start": next_week_at(9)}, "rrule", "rrule_never_fires"),
        ({"rrule": "FREQ=DAILY;UNTIL=20200101", "start": "2019-01-01T09:00"}, "rrule", "rrule_never_fires"),
        ({"rrule": "every day", "start": next_week_at(9)}, "rrule", "rrule_invalid"),
    ]
    for body, field, code in cases:
        response = await org.call("POST", path, body, **idempotency_key())
        assert response.status_code == 422, (body, response.text)
        assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)], body
    assert (await org.call("GET", f"/{campaign['id']}")).json()["schedule"] == {"kind": "none"}

    empty = await org.draft(body="")
    no_audience = await org.draft(audience=None)
    for draft, field in [(empty, "body"), (no_audience, "audience")]:
        for action, body in [("schedule", {"at": next_week_at(9)}), ("send-now", None)]:
            refused = await org.call("POST", f"/{draft['id']}/{action}", body, **idempotency_key())
            assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
        assert (await org.call("GET", f"/{draft['id']}")).json()["state"] == "draft"


async def test_scheduling_on_a_second_tuesday_rule_shows_the_next_five_in_local_time(org: Org) -> None:
    campaign = await org.draft()
    body = {"rrule": "FREQ=MONTHLY;BYDAY=2TU", "start": "2026-01-01T18:30"}
    preview = await org.call("POST", "/schedule-preview", body)
    scheduled = await org.call("POST", f"/{campaign['id']}/schedule", body, **idempotency_key())
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["state"] == "scheduled" and scheduled.json()["approved_by"] == org.email
    assert scheduled.json()["schedule"] == {"kind": "rrule", "rrule": "FREQ=MONTHLY;BYDAY=2TU",
                                            "start": "2026-01-01T18:30:00", "time_zone": "America/New_York"}

    shown = (await org.call("GET", f"/{campaign['id']}/occurrences")).json()
    assert shown == preview.json() and shown["time_zone"] == "America/New_York"
    local = [datetime.fromisoformat(o["local"]) for o in shown["occurrences"]]
    assert len(local) == 5 and all(t.weekday() == 1 and 8 <= t.day <= 14 for t in local)
    assert all((t.hour, t.minute) == (18, 30) for t in local)  # EST or EDT alike
    assert datetime.fromisoformat(scheduled.json()["next_occurrence_at"]) == datetime.fromisoformat(
        shown["occurrences"][0]["at"])

    rescheduled = await org.call("POST", f"/{campaign['id']}/schedule", {"at": next_week_at(9)}, **idempotency_key())
    assert rescheduled.json()["schedule"]["kind"] == "at" and rescheduled.json()["state"] == "scheduled"
    assert len((await org.call("GET", f"/{campaign['id']}/occurrences")).json()["occurrences"]) == 1


async def test_send_now_with_an_idempotency_key_creates_one_run_however_often_it_is_sent(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await org.draft()
    path = f"/{campaign['id']}/send-now"
    key = {"Idempotency-Key": f"send-{uuid.uuid4()}"}

    together = await asyncio.gather(*(org.call("POST", path, **key) for _ in range(3)))
    later = await org.call("POST", path, **key)

    assert {r.status_code for r in [*together, later]} == {202}
    assert len({r.json()["run"]["id"] for r in [*together, later]}) == 1
    assert later.headers["Idempotent-Replayed"] == "true"
    runs = await db_pool.fetch("SELECT origin, state FROM campaign_runs WHERE campaign_id = $1", uuid.UUID(
        campaign["id"]))
    assert [(r["origin"], r["state"]) for r in runs] == [("send_now", "pending")]
    assert later.json()["campaign"]["state"] == "sending" and later.json()["campaign"]["schedule"]["kind"] == "now"
    assert later.json()["campaign"]["actions"] == ["pause", "cancel", "duplicate"]

    other = await org.draft()
    reused = await org.call("POST", f"/{other['id']}/send-now", **key)
    problem(reused, 422, "idempotency_key_reused")
    assert (await org.call("GET", f"/{other['id']}")).json()["state"] == "draft"


async def test_send_now_and_schedule_without_an_idempotency_key_are_400_and_start_nothing(
    org: Org, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    campaign = await org.draft()
    for action, body in [("send-now", None), ("schedule", {"at": next_week_at(9)})]:
        refused = problem(await org.call("POST", f"/{campaign['id']}/{action}", body), 400, "idempotency_key_missing")
        assert refused["detail"].startswith("Idempotency-Key: send this header"), refused
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [("Idempotency-Key", "idempotency_key_missing")]
    assert await db_pool.fetchval("SELECT count(*) FROM campaign_runs WHERE campaign_id = $1",
                                  uuid.UUID(campaign["id"])) == 0
    after = (await org.call("GET", f"/{campaign['id']}")).json()
    assert after["state"] == "draft" and after["schedule"] == {"kind": "none"}

    paths = (await client.get("/openapi.json")).json()["paths"]
    for action in ("send-now", "schedule"):
        parameters = paths[f"/api/v1/campaigns/{{campaign_id}}/{action}"]["post"]["parameters"]
        header = next(p for p in parameters if p["name"] == "Idempotency-Key")
        assert header["in"] == "header" and header["required"] is True


async def test_schedule_sent_twice_with_one_key_schedules_once_and_replays_the_answer(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await org.draft()
    key = idempotency_key()
    first = await org.call("POST", f"/{campaign['id']}/schedule", {"at": next_week_at(9)}, **key)
    again = await org.call("POST", f"/{campaign['id']}/schedule", {"at": next_week_at(9)}, **key)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    audit = await db_pool.fetch("SELECT action FROM campaign_audit WHERE campaign_id = $1 ORDER BY id",
                                uuid.UUID(campaign["id"]))
    assert [a["action"] for a in audit] == ["created", "scheduled"]


async def test_illegal_transitions_are_409_with_the_current_state(org: Org, db_pool: asyncpg.Pool) -> None:
    campaign = await org.draft()
    path = f"/{campaign['id']}"
    for action, requested in [("pause", "paused"), ("resume", "sending"), ("archive", "archived"),
                              ("cancel", "cancelled")]:
        refused = problem(await org.call("POST", f"{path}/{action}"), 409, "invalid_transition")
        assert (refused["current_state"], refused["requested"]) == ("draft", requested)
        assert refused["detail"] == f"cannot go from draft to {requested}"

    # Send now: the campaign is sending at once (its run is pending until the scheduler publishes it).
    await org.call("POST", f"{path}/send-now", **idempotency_key())
    refused = problem(await org.call("DELETE", path), 409, "campaign_not_editable")
    assert refused["current_state"] == "sending" and "only draft campaigns can" in refused["detail"]
    problem(await org.call("POST", f"{path}/resume"), 409, "invalid_transition")

    # The scheduler publishes the run and the audience service starts it.
    for state in ("resolving", "sending"):
        await db_pool.execute("UPDATE campaign_runs SET state = $2 WHERE campaign_id = $1",
                              uuid.UUID(campaign["id"]), state)
    problem(await org.call("PATCH", path, {"name": "x"}), 409, "campaign_not_editable")
    problem(await org.call("POST", f"{path}/send-now", **idempotency_key()), 409, "campaign_not_editable")

    paused = await org.call("POST", f"{path}/pause")
    assert paused.json()["state"] == "paused" and paused.json()["actions"] == ["edit", "resume", "cancel", "duplicate"]
    assert (await org.call("PATCH", path, {"body": "Updated for the rest"})).status_code == 200
    run_state = "SELECT state FROM campaign_runs WHERE campaign_id = $1"
    assert await db_pool.fetchval(run_state, uuid.UUID(campaign["id"])) == "paused"
    # The run sends what it was started with; the edit is for the next run.
    run_body = await db_pool.fetchval("SELECT body FROM campaign_runs WHERE campaign_id = $1",
                                      uuid.UUID(campaign["id"]))
    assert run_body == campaign["body"] != "Updated for the rest"
    assert (await org.call("POST", f"{path}/resume")).json()["state"] == "sending"
    assert await db_pool.fetchval(run_state, uuid.UUID(campaign["id"])) == "sending"

    cancelled = await org.call("POST", f"{path}/cancel")
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["next_occurrence_at"] is None
    assert await db_pool.fetchval(run_state, uuid.UUID(campaign["id"])) == "cancelled"
    problem(await org.call("POST", f"{path}/cancel"), 409, "invalid_transition")
    assert (await org.call("POST", f"{path}/archive")).json()["state"] == "archived"
    refused = problem(await org.call("POST", f"{path}/schedule", {"at": next_week_at(9)}, **idempotency_key()), 409,
                      "campaign_not_editable")
    assert refused["current_state"] == "archived"
    audit = await db_pool.fetch("SELECT action, from_state, to_state FROM campaign_audit WHERE campaign_id = $1 "
                                "ORDER BY id", uuid.UUID(campaign["id"]))
    assert [a["action"] for a in audit] == ["created", "sent_now", "paused", "edited", "resumed", "cancelled",
                                            "archived"]


async def test_the_list_filters_by_state_and_pages_without_overlap(org: Org) -> None:
    ids = [(await org.draft(name=f"Campaign {i}"))["id"] for i in range(5)]
    for campaign_id in ids[:2]:
        scheduled = await org.call("POST", f"/{campaign_id}/schedule", {"at": next_week_at(10)}, **idempotency_key())
        assert scheduled.status_code == 200

    scheduled = (await org.call("GET", "?state=scheduled")).json()
    assert scheduled["total"] == 2 and {c["id"] for c in scheduled["items"]} == set(ids[:2])
    both = (await org.call("GET", "?state=scheduled&state=draft")).json()
    assert both["total"] == 5
    pages = [(await org.call("GET", f"?limit=2&offset={o}")).json() for o in (0, 2, 4)]
    seen = [c["id"] for page in pages for c in page["items"]]
    assert sorted(seen) == sorted(ids) and [p["total"] for p in pages] == [5, 5, 5]
    assert seen == ids[::-1]  # newest first
    bad = problem(await org.call("GET", "?state=sent&limit=0"), 422, "request_invalid")
    assert sorted(e["field"] for e in bad["errors"]) == ["limit", "state.0"]


async def test_duplicate_makes_a_fresh_draft_from_any_state(org: Org) -> None:
    original = await org.draft(name="Gala night")
    await org.call("POST", f"/{original['id']}/send-now", **idempotency_key())
    copy = await org.call("POST", f"/{original['id']}/duplicate")
    assert copy.status_code == 201
    assert copy.json()["name"] == "Copy of Gala night" and copy.json()["state"] == "draft"
    assert copy.json()["body"] == original["body"] and copy.json()["schedule"] == {"kind": "none"}
    assert copy.json()["duplicated_from"] == original["id"] and copy.json()["approved_by"] is None


async def test_campaigns_are_scoped_to_the_callers_organisation(
    org: Org, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    campaign = await org.draft()
    other = await make_org(db_pool, client)
    problem(await other.call("GET", f"/{campaign['id']}"), 404, "campaign_not_found")
    problem(await other.call("POST", f"/{campaign['id']}/send-now", **idempotency_key()), 404, "campaign_not_found")
    assert (await other.call("GET", "")).json()["total"] == 0
    problem(await client.get("/api/v1/campaigns"), 401, "unauthenticated")
    # The header that used to name the organisation means nothing now.
    problem(await client.get("/api/v1/campaigns", headers={"X-Org-Id": str(org.id)}), 401, "unauthenticated")
    problem(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_segment_limits_warn_outside_the_usual_range_and_the_account_cap_applies(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    capped = await make_org(db_pool, client, max_segments=10_000)
    campaign = await capped.draft(segment_limit=12_000)
    assert campaign["segment_limit"] == 12_000 and campaign["effective_segment_limit"] == 10_000
    assert campaign["warnings"] == ["segment_limit 12,000 is outside the usual 15,000-30,000",
                                    "the account caps every campaign at 10,000 segments"]


async def test_the_organisations_segment_limit_is_a_ceiling_for_every_campaign(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    org = await make_org(db_pool, client)  # the organisation's limit: 20,000 segments per campaign
    refused = await org.call("POST", "", {"name": "Everyone", "segment_limit": 30_000})
    body = problem(refused, 422, "segment_limit_over_organisation")
    assert body["errors"][0]["field"] == "segment_limit"
    assert "over the organisation's limit of 20,000 segments" in body["errors"][0]["message"]
    draft = await org.draft(segment_limit=20_000)
    problem(await org.call("PATCH", f"/{draft['id']}", {"segment_limit": 20_001}), 422,
            "segment_limit_over_organisation")
    edited = await org.call("PATCH", f"/{draft['id']}", {"segment_limit": 5_000})
    assert edited.status_code == 200 and edited.json()["segment_limit"] == 5_000


async def test_the_openapi_document_lists_every_campaign_route(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    actions = ["schedule", "send-now", "pause", "resume", "cancel", "archive", "duplicate", "occurrences", "runs"]
    assert {f"/api/v1/campaigns/{{campaign_id}}/{a}" for a in actions} <= set(paths)
    assert "Idempotency-Key" in str(paths["/api/v1/campaigns/{campaign_id}/send-now"])
