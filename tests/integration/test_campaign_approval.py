"""Approval before sending (issue 27) through the real app on the real database: an organisation that
requires approval has each campaign approved by an admin or approver who is none of its authors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.kafka import records_to_end, running_publisher
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE
from services.scheduler.loop import Scheduler, run_forever, tick
from tests.conftest import eventually
from tests.integration import api_harness
from tests.integration.api_harness import Caller, idempotency_key, problem

BODY = "Hi {{first_name|there}}, the AGM is on Thursday."
AUDIENCE = {"kind": "iqa", "query": "$/Members/AGM"}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@dataclass
class Org:
    """An organisation that requires approval: its author (staff), an approver, an admin and a staff member."""

    id: uuid.UUID
    author: Caller
    approver: Caller
    admin: Caller
    staff: Caller


async def campaigns(caller: Caller, method: str, path: str = "", json: Any = None, **headers: str) -> httpx.Response:
    return await caller.call(method, "/api/v1/campaigns" + path, json, **headers)


@pytest.fixture
async def org(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Org:
    made = await api_harness.make_org(db_pool)
    callers = [await api_harness.signed_in(db_pool, client, made.id, role=role)
               for role in ("staff", "approver", "admin", "staff")]
    org = Org(made.id, *callers)
    turned_on = await org.admin.call("PATCH", "/api/v1/settings/general", {"require_approval": True})
    assert turned_on.status_code == 200 and turned_on.json()["general"]["require_approval"] is True, turned_on.text
    return org


async def draft(caller: Caller, **fields: Any) -> dict[str, Any]:
    created = await campaigns(caller, "POST", "", {"name": "AGM", "body": BODY, "audience": AUDIENCE} | fields)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def submitted(caller: Caller, **fields: Any) -> dict[str, Any]:
    campaign = await draft(caller, **fields)
    response = await campaigns(caller, "POST", f"/{campaign['id']}/submit")
    assert response.status_code == 200 and response.json()["state"] == "in_review", response.text
    return dict(response.json())


async def approved(org: Org, **fields: Any) -> dict[str, Any]:
    campaign = await submitted(org.author, **fields)
    response = await campaigns(org.approver, "POST", f"/{campaign['id']}/approve",
                               {"fingerprint": campaign["content_fingerprint"]})
    assert response.status_code == 200 and response.json()["state"] == "approved", response.text
    return dict(response.json())


async def audit_actions(pool: asyncpg.Pool, campaign_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    rows = await pool.fetch("SELECT action, actor, detail FROM audit_events WHERE target_id = $1 ORDER BY id",
                            campaign_id)
    return [(r["action"], r["actor"], json.loads(r["detail"])) for r in rows]


def next_week_at(hour: int) -> str:
    return (datetime.now(UTC) + timedelta(days=7)).strftime(f"%Y-%m-%dT{hour:02d}:00")


# ---------------------------------------------------------------------------------------------


async def test_a_draft_is_sent_only_after_someone_other_than_its_author_approves_it(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await draft(org.author)
    path = f"/{campaign['id']}"
    assert campaign["actions"] == ["edit", "delete", "submit", "duplicate"]
    for action, body in [("schedule", {"at": next_week_at(9)}), ("send-now", None)]:
        problem(await campaigns(org.author, "POST", f"{path}/{action}", body, **idempotency_key()),
                409, "approval_required")

    in_review = (await campaigns(org.author, "POST", f"{path}/submit")).json()
    assert in_review["state"] == "in_review" and in_review["actions"] == ["edit", "approve", "reject", "duplicate"]
    problem(await campaigns(org.author, "POST", f"{path}/approve", {}), 403, "approver_only")
    problem(await campaigns(org.staff, "POST", f"{path}/approve", {}), 403, "approver_only")
    admin_key = await api_harness.with_api_key(db_pool, org.author.client, org.id, role="admin")
    problem(await campaigns(admin_key, "POST", f"{path}/approve", {}), 403, "approver_only")
    assert (await campaigns(org.author, "GET", path)).json()["state"] == "in_review"

    done = await campaigns(org.approver, "POST", f"{path}/approve", {"fingerprint": in_review["content_fingerprint"]})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "approved" and done.json()["approved_by"] == org.approver.actor
    assert done.json()["approved_at"] is not None and done.json()["actions"] == [
        "edit", "schedule", "send_now", "duplicate"]

    scheduled = await campaigns(org.author, "POST", f"{path}/schedule", {"at": next_week_at(9)}, **idempotency_key())
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["state"] == "scheduled" and scheduled.json()["approved_by"] == org.approver.actor

    moves = [(a, actor) for a, actor, _ in await audit_actions(db_pool, campaign["id"])]
    assert moves == [("campaign.created", org.author.actor), ("campaign.submitted", org.author.actor),
                     ("campaign.approved", org.approver.actor), ("campaign.scheduled", org.author.actor)]


async def test_an_approver_or_admin_cannot_approve_a_campaign_they_wrote_or_changed(org: Org) -> None:
    own = await submitted(org.approver)
    problem(await campaigns(org.approver, "POST", f"/{own['id']}/approve", {}), 403, "author_cannot_approve")
    problem(await campaigns(org.approver, "POST", f"/{own['id']}/reject", {"comment": "fine"}),
            403, "author_cannot_approve")

    theirs = await submitted(org.author)
    edited = await campaigns(org.admin, "PATCH", f"/{theirs['id']}", {"body": BODY + " Bring your card."})
    assert edited.status_code == 200 and org.admin.actor in edited.json()["content_authors"], edited.text
    problem(await campaigns(org.admin, "POST", f"/{theirs['id']}/approve", {}), 403, "author_cannot_approve")
    ok = await campaigns(org.approver, "POST", f"/{theirs['id']}/approve", {})
    assert ok.status_code == 200 and ok.json()["body"] == BODY + " Bring your card.", ok.text

    copy = await campaigns(org.approver, "POST", f"/{theirs['id']}/duplicate")
    assert set(copy.json()["content_authors"]) == {org.author.actor, org.admin.actor, org.approver.actor}


async def test_approving_what_changed_since_it_was_read_is_refused(org: Org) -> None:
    campaign = await submitted(org.author)
    read = campaign["content_fingerprint"]
    await campaigns(org.author, "PATCH", f"/{campaign['id']}", {"body": "Hi, the AGM moved to Friday."})
    problem(await campaigns(org.approver, "POST", f"/{campaign['id']}/approve", {"fingerprint": read}),
            409, "campaign_changed")
    assert (await campaigns(org.author, "GET", f"/{campaign['id']}")).json()["state"] == "in_review"


async def test_changing_wording_audience_sender_link_tracking_or_transactional_after_approval_returns_it_to_review(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    sender_id = await db_pool.fetchval("SELECT id FROM senders WHERE org_id = $1", org.id)
    for change in ({"body": "Hi, the AGM moved to Friday."}, {"audience": {"kind": "iqa", "query": "$/Members/All"}},
                   {"sender_id": str(sender_id)}, {"track_links": True}, {"transactional": True}):
        campaign = await approved(org)
        renamed = await campaigns(org.author, "PATCH", f"/{campaign['id']}", {"name": "AGM reminder"})
        assert renamed.json()["state"] == "approved" and renamed.json()["approved_by"] == org.approver.actor

        changed = await campaigns(org.author, "PATCH", f"/{campaign['id']}", change)
        assert changed.status_code == 200, changed.text
        assert changed.json()["state"] == "in_review" and changed.json()["approved_by"] is None, change
        problem(await campaigns(org.author, "POST", f"/{campaign['id']}/send-now", None, **idempotency_key()),
                409, "campaign_not_editable")
        actions = [a for a, _, _ in await audit_actions(db_pool, campaign["id"])]
        assert actions[-2:] == ["campaign.edited", "campaign.returned_to_review"]


async def test_a_rejection_carries_a_comment_and_returns_the_campaign_to_its_author(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await submitted(org.author)
    path = f"/{campaign['id']}"
    for body in ({}, {"comment": "   "}):
        refused = await campaigns(org.approver, "POST", f"{path}/reject", body)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "comment", refused.text
    problem(await campaigns(org.staff, "POST", f"{path}/reject", {"comment": "no"}), 403, "approver_only")

    rejected = await campaigns(org.approver, "POST", f"{path}/reject", {"comment": "Say which room."})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "draft" and rejected.json()["review_comment"] == "Say which room."
    assert (await audit_actions(db_pool, campaign["id"]))[-1] == (
        "campaign.rejected", org.approver.actor, {"comment": "Say which room."})
    problem(await campaigns(org.approver, "POST", f"{path}/approve", {}), 409, "invalid_transition")

    again = await campaigns(org.author, "POST", f"{path}/submit")
    assert again.json()["state"] == "in_review" and again.json()["review_comment"] is None


async def test_a_recurring_series_is_approved_once_and_a_change_needs_approval_again(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await approved(org)
    path = f"/{campaign['id']}"
    series = {"rrule": "FREQ=MONTHLY;BYDAY=2TU", "start": "2026-01-01T18:30"}
    scheduled = await campaigns(org.author, "POST", f"{path}/schedule", series, **idempotency_key())
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "scheduled", scheduled.text
    assert scheduled.json()["next_occurrence_at"] is not None
    run_id = await db_pool.fetchval(
        "INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at) VALUES ($1, $2, now() + interval '1 day') "
        "RETURNING id", org.id, uuid.UUID(campaign["id"]))  # one the scheduler made and has not published yet

    changed = await campaigns(org.author, "PATCH", path, {"body": "Hi, chapter meetings move to Wednesdays."})
    assert changed.json()["state"] == "in_review" and changed.json()["next_occurrence_at"] is None, changed.text
    run = await db_pool.fetchrow("SELECT state, state_reason_code FROM campaign_runs WHERE id = $1", run_id)
    assert (run["state"], run["state_reason_code"]) == ("cancelled", "rescheduled")

    again = await campaigns(org.approver, "POST", f"{path}/approve", {})
    assert again.json()["state"] == "approved", again.text
    resumed = await campaigns(org.author, "POST", f"{path}/schedule", series, **idempotency_key())
    assert resumed.status_code == 200 and resumed.json()["state"] == "scheduled", resumed.text


async def test_scheduling_checks_the_approved_content_as_stored_not_what_a_page_says(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await approved(org)
    # A change that went around the API (or a bug in it): the stored body is no longer what was approved.
    await db_pool.execute("UPDATE campaigns SET body = 'Unapproved words' WHERE id = $1", uuid.UUID(campaign["id"]))
    for action, body in [("schedule", {"at": next_week_at(9)}), ("send-now", None)]:
        problem(await campaigns(org.author, "POST", f"/{campaign['id']}/{action}", body, **idempotency_key()),
                409, "approval_outdated")
    assert await db_pool.fetchval("SELECT count(*) FROM campaign_runs WHERE campaign_id = $1",
                                  uuid.UUID(campaign["id"])) == 0


async def test_a_campaign_on_the_default_sender_needs_approval_again_when_the_default_changes(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await approved(org)
    assert campaign["sender_id"] is None
    other = await factories.make_sender(db_pool, org.id, "+18885550199")
    changed = await org.admin.call("PATCH", "/api/v1/settings/general", {"default_sender_id": str(other)})
    assert changed.status_code == 200, changed.text
    problem(await campaigns(org.author, "POST", f"/{campaign['id']}/send-now", None, **idempotency_key()),
            409, "approval_outdated")


async def test_a_paused_campaign_keeps_its_approved_content_while_approval_is_required(
    org: Org, db_pool: asyncpg.Pool
) -> None:
    campaign = await approved(org)
    await db_pool.execute("UPDATE campaigns SET state = 'sending' WHERE id = $1", uuid.UUID(campaign["id"]))
    await db_pool.execute("UPDATE campaigns SET state = 'paused' WHERE id = $1", uuid.UUID(campaign["id"]))
    problem(await campaigns(org.author, "PATCH", f"/{campaign['id']}", {"body": "Changed while paused"}),
            409, "campaign_not_editable")
    assert (await campaigns(org.author, "GET", f"/{campaign['id']}")).json()["body"] == BODY
    limited = await campaigns(org.author, "PATCH", f"/{campaign['id']}", {"segment_limit": 16_000})
    assert limited.status_code == 200 and limited.json()["state"] == "paused", limited.text


async def test_the_setting_is_required_when_given(org: Org) -> None:
    refused = await org.admin.call("PATCH", "/api/v1/settings/general", {"require_approval": None})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "require_approval", refused.text
    problem(await org.approver.call("PATCH", "/api/v1/settings/general", {"require_approval": False}),
            403, "admin_only")


async def test_an_admin_makes_a_user_an_approver_and_a_key_cannot_be_one(org: Org) -> None:
    created = await org.admin.call("POST", "/api/v1/users", {"email": f"reviewer-{uuid.uuid4().hex[:8]}@example.org",
                                                             "role": "approver", "password": "a long enough password"})
    assert created.status_code == 201 and created.json()["role"] == "approver", created.text
    demoted = await org.admin.call("PATCH", f"/api/v1/users/{org.approver.user_id}", {"role": "staff"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "staff", demoted.text
    campaign = await submitted(org.author)
    problem(await campaigns(org.approver, "POST", f"/{campaign['id']}/approve", {}), 403, "approver_only")

    key = await org.admin.call("POST", "/api/v1/api-keys", {"name": "reviewer", "role": "approver"})
    assert key.status_code == 422 and key.json()["errors"][0]["field"] == "role", key.text


# ---------------------------------------------------------------------------------------------
# The scheduler's gate: every send is published by the scheduler, which checks the approval again.


@pytest.fixture
async def scheduler(db_pool: asyncpg.Pool, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Scheduler]:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE], prefix=topic_prefix)
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        yield Scheduler(pool=db_pool, publisher=publisher, instance="approval-test")


async def published_runs(kafka_bootstrap: str, topic_prefix: str, org: Org) -> list[str]:
    """The run ids of every campaign-due event the scheduler published for ``org`` (none: no recipient is
    resolved); the topic is the session's, shared with other tests."""
    records = await records_to_end(kafka_bootstrap, {CAMPAIGN_DUE.full_name(topic_prefix): CAMPAIGN_DUE.partitions})
    events = [json.loads(r.value) for r in records]
    return [e["run_id"] for e in events if e["org_id"] == str(org.id)]


async def run_of(pool: asyncpg.Pool, campaign_id: str, occurrence_at: datetime | None = None) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT id, state, state_reason_code, published_at FROM campaign_runs WHERE campaign_id = $1 "
        "AND ($2::timestamptz IS NULL OR occurrence_at = $2) ORDER BY occurrence_at DESC LIMIT 1",
        uuid.UUID(campaign_id), occurrence_at)


@pytest.mark.parametrize("change", ["body = 'Unapproved words'", "transactional = true"])
async def test_a_send_whose_content_changed_in_the_database_after_approval_is_not_published(
    org: Org, db_pool: asyncpg.Pool, scheduler: Scheduler, kafka_bootstrap: str, topic_prefix: str, change: str
) -> None:
    untouched, changed = await approved(org), await approved(org)
    for campaign in (untouched, changed):
        sent = await campaigns(org.author, "POST", f"/{campaign['id']}/send-now", None, **idempotency_key())
        assert sent.status_code == 202, sent.text
    # Around the API (or a bug in it), after send-now checked the approval and the run took its copy.
    await db_pool.execute(f"UPDATE campaigns SET {change} WHERE id = $1", uuid.UUID(changed["id"]))

    loop = asyncio.create_task(run_forever(scheduler, interval_s=0.05))
    try:
        await eventually(lambda: db_pool.fetchval(
            "SELECT bool_and(published_at IS NOT NULL OR state <> 'pending') FROM campaign_runs "
            "WHERE campaign_id = ANY($1::uuid[])", [untouched["id"], changed["id"]]), timeout=30)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    good, refused = await run_of(db_pool, untouched["id"]), await run_of(db_pool, changed["id"])
    assert good["published_at"] is not None and refused["published_at"] is None
    assert (refused["state"], refused["state_reason_code"]) == ("refused", "approval_outdated")
    assert await published_runs(kafka_bootstrap, topic_prefix, org) == [str(good["id"])]
    after = (await campaigns(org.author, "GET", f"/{changed['id']}")).json()
    assert after["state"] == "in_review" and "approve" in after["actions"]
    audit = await db_pool.fetchrow("SELECT actor, from_state, to_state, detail FROM campaign_audit "
                                   "WHERE campaign_id = $1 AND action = 'returned_to_review'", uuid.UUID(changed["id"]))
    assert (audit["actor"], audit["from_state"], audit["to_state"]) == ("scheduler", "sending", "in_review")
    assert json.loads(audit["detail"])["reason"] == "approval_outdated"


async def approved_before_upgrade(pool: asyncpg.Pool, campaign_id: str) -> None:
    """Replaces the campaign's approval with the one an earlier release gave it: a fingerprint of the
    wording, audience and sender it would send from, nothing else."""
    row = await pool.fetchrow(
        "SELECT c.body, c.audience::text AS audience, coalesce(c.sender_id, (SELECT s.id FROM senders s "
        "WHERE s.org_id = c.org_id AND s.is_default)) AS sender_id FROM campaigns c WHERE c.id = $1",
        uuid.UUID(campaign_id))
    then = {"body": row["body"], "audience": json.loads(row["audience"]), "sender_id": row["sender_id"]}
    pinned = hashlib.sha256(json.dumps(then, sort_keys=True, default=str).encode()).hexdigest()
    await pool.execute("UPDATE campaigns SET approval_fingerprint = $2 WHERE id = $1", uuid.UUID(campaign_id), pinned)


async def test_an_approval_from_before_the_upgrade_sends_unless_tracking_or_transactional_is_on(
    org: Org, db_pool: asyncpg.Pool, scheduler: Scheduler, kafka_bootstrap: str, topic_prefix: str
) -> None:
    plain, tracked = await approved(org), await approved(org)
    for campaign in (plain, tracked):
        await approved_before_upgrade(db_pool, campaign["id"])
    await db_pool.execute("UPDATE campaigns SET track_links = true WHERE id = $1", uuid.UUID(tracked["id"]))

    problem(await campaigns(org.author, "POST", f"/{tracked['id']}/send-now", None, **idempotency_key()),
            409, "approval_outdated")
    sent = await campaigns(org.author, "POST", f"/{plain['id']}/send-now", None, **idempotency_key())
    assert sent.status_code == 202, sent.text
    loop = asyncio.create_task(run_forever(scheduler, interval_s=0.05))
    try:
        await eventually(lambda: db_pool.fetchval(
            "SELECT published_at IS NOT NULL FROM campaign_runs WHERE campaign_id = $1", uuid.UUID(plain["id"])),
            timeout=30)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    run = await run_of(db_pool, plain["id"])
    assert await published_runs(kafka_bootstrap, topic_prefix, org) == [str(run["id"])]


async def test_each_occurrence_of_an_approved_series_is_checked_and_a_change_needs_approval_again(
    org: Org, db_pool: asyncpg.Pool, scheduler: Scheduler, kafka_bootstrap: str, topic_prefix: str
) -> None:
    campaign = await approved(org)
    path = f"/{campaign['id']}"
    daily = {"rrule": "FREQ=DAILY", "start": "2026-01-01T18:30"}
    scheduled = await campaigns(org.author, "POST", f"{path}/schedule", daily, **idempotency_key())
    assert scheduled.status_code == 200, scheduled.text
    first = datetime.fromisoformat(scheduled.json()["next_occurrence_at"])
    second = first + timedelta(days=1)

    await tick(scheduler, first + timedelta(seconds=1))  # the series as approved
    published = await run_of(db_pool, campaign["id"], first)
    assert published["published_at"] is not None

    await db_pool.execute("UPDATE campaigns SET body = 'Unapproved words' WHERE id = $1", uuid.UUID(campaign["id"]))
    later = await db_pool.fetchval(  # another run of the series, not published yet
        "INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at) VALUES ($1, $2, $3) RETURNING id",
        org.id, uuid.UUID(campaign["id"]), second + timedelta(hours=1))
    await tick(scheduler, second + timedelta(seconds=1))
    refused = await run_of(db_pool, campaign["id"], second)
    assert (refused["state"], refused["state_reason_code"], refused["published_at"]) == (
        "refused", "approval_outdated", None)
    assert tuple(await db_pool.fetchrow("SELECT state, state_reason_code FROM campaign_runs WHERE id = $1",
                                        later)) == ("cancelled", "rescheduled")
    assert await published_runs(kafka_bootstrap, topic_prefix, org) == [str(published["id"])]
    in_review = (await campaigns(org.author, "GET", path)).json()
    assert in_review["state"] == "in_review" and in_review["next_occurrence_at"] is None

    again = await campaigns(org.approver, "POST", f"{path}/approve", {"fingerprint": in_review["content_fingerprint"]})
    assert again.status_code == 200 and again.json()["state"] == "approved", again.text
    resumed = await campaigns(org.author, "POST", f"{path}/schedule", daily, **idempotency_key())
    assert resumed.status_code == 200, resumed.text
    third = datetime.fromisoformat(resumed.json()["next_occurrence_at"])
    await tick(scheduler, third + timedelta(seconds=1))
    assert (await run_of(db_pool, campaign["id"], third))["published_at"] is not None  # the new wording, approved
