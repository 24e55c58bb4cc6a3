"""A run's recipient funnel, its per-recipient CSV and Home's 30-day rates on the real database, from seeded
snapshot, ledger, click, reply and opt-out rows whose counts are known exactly."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

SENDER = "+18885550100"


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@dataclass(frozen=True)
class Recipient:
    """One snapshot row and what became of it: its ledger row (``state`` None: none yet), clicks, replies."""

    member_id: str
    status: str = "queued"
    reason: str | None = None
    detail: str | None = None
    state: str | None = None
    twilio_status: str | None = None
    error_code: int | None = None
    ledger_reason: str | None = None
    sent: bool = False
    clicks: tuple[str, ...] = ()  # agent classes
    replies: tuple[tuple[str, str], ...] = ()  # (kind, body)
    opted_out: bool = False


# Targeted 16: 6 left out by the audience service, 4 ended unsent by the dispatcher, 4 sent (3 delivered,
# 1 undelivered with 30003), 1 refused by Twilio (21211) and 1 waiting for the dispatcher.
RECIPIENTS = [
    Recipient("ann", state="sent", twilio_status="delivered", sent=True,
              clicks=("mobile", "mobile", "desktop", "preview_bot"),
              replies=(("other", "=cmd|' /C calc'!A0"),)),
    Recipient("+SUM(1)", state="sent", twilio_status="delivered", sent=True, clicks=("preview_bot",),
              replies=(("opt_out", "STOP"),), opted_out=True),
    Recipient("cy", state="sent", twilio_status="undelivered", error_code=30003, sent=True),
    Recipient("di", state="failed", error_code=21211),
    Recipient("ed", state="outside_window"),
    Recipient("flo", state="frequency_capped"),
    Recipient("gus", state="suppressed"),
    Recipient("hal", state="failed", ledger_reason="cap_reached: +18885550100's daily cap"),
    Recipient("ivy"),
    Recipient("jo", state="sent", twilio_status="delivered", sent=True, clicks=("other",),
              replies=(("other", "Will do"), ("help", "HELP"))),
    Recipient("kim", status="excluded", reason="opted_out"),
    Recipient("lee", status="excluded", reason="duplicate_number"),
    Recipient("max", status="excluded", reason="invalid_number"),
    Recipient("ned", status="excluded", reason="bad_number", detail="twilio_21614"),
    Recipient("oz", status="excluded", reason="bad_number", detail="twilio_30003"),
    Recipient("pat", status="excluded", reason="over_segment_limit"),
]


async def seed_run(pool: asyncpg.Pool, org_id: uuid.UUID, campaign_id: uuid.UUID, recipients: list[Recipient], *,
                   track_links: bool = True, started: str = "now()") -> uuid.UUID:
    run = await factories.make_run(pool, org_id, campaign_id, state="completed", track_links=track_links,
                                   started_at=factories.Sql(started))
    async with pool.acquire() as conn, conn.transaction():
        for position, r in enumerate(recipients):
            await _seed_recipient(conn, org_id, run, position, r)
    return run


async def _seed_recipient(conn: asyncpg.Connection, org_id: uuid.UUID, run: uuid.UUID, position: int,
                          r: Recipient) -> None:
    recipient_id, phone = uuid.uuid4(), f"+1415555{position:04d}"
    queued = r.status == "queued"
    await conn.execute(
        """INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, encoding,
                                       segments, status, reason, detail, sender)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'GSM-7', $8, $9, $10, $11, $12)""",
        run, position, recipient_id, org_id, r.member_id, phone, "Hi" if queued else None, 1 if queued else 0,
        r.status, r.reason, r.detail, SENDER)
    if r.state is None:
        return
    sid = factories.fresh_sid() if r.sent else None
    await conn.execute(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, message_sid,
                                    twilio_status, error_code, reason, sent_at)
           VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, CASE WHEN $7::text IS NULL THEN NULL ELSE now() END)""",
        run, recipient_id, org_id, SENDER, phone, r.state, sid, r.twilio_status, r.error_code, r.ledger_reason)
    if r.twilio_status == "delivered":
        await conn.execute("INSERT INTO status_callbacks (org_id, message_sid, message_status) VALUES ($1, $2, $3)",
                           org_id, sid, "delivered")
    for agent in r.clicks:
        await conn.execute(
            """INSERT INTO link_clicks (click_id, code, org_id, run_id, recipient_id, clicked_at, agent_class)
               VALUES ($1, 'abcdefghijkl', $2, $3, $4, now(), $5)""", uuid.uuid4(), org_id, run, recipient_id, agent)
    for kind, body in r.replies:
        await conn.execute(
            """INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, run_id,
                                             recipient_id, received_at)
               VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, now())""",
            org_id, factories.fresh_sid(), phone, SENDER, body, kind, run, recipient_id)
    if r.opted_out:
        await conn.execute("INSERT INTO usage_optouts (run_id, recipient_id, org_id, day) VALUES ($1, $2, $3, "
                           "current_date)", run, recipient_id, org_id)


@dataclass(frozen=True)
class Seeded:
    staff: Caller
    campaign_id: uuid.UUID
    run_id: uuid.UUID


@pytest.fixture
async def seeded(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Seeded:
    org = await api_harness.make_org(db_pool)
    campaign = await factories.make_campaign(db_pool, org.id, state="completed", track_links=True)
    run = await seed_run(db_pool, org.id, campaign, RECIPIENTS)
    return Seeded(await signed_in(db_pool, client, org.id), campaign, run)


def _path(seeded: Seeded, tail: str, run_id: uuid.UUID | None = None) -> str:
    return f"/api/v1/campaigns/{seeded.campaign_id}/runs/{run_id or seeded.run_id}/{tail}"


async def test_the_funnel_counts_every_step_from_where_its_facts_live(seeded: Seeded) -> None:
    response = await seeded.staff.call("GET", _path(seeded, "funnel"))
    assert response.status_code == 200, response.text
    funnel: dict[str, Any] = response.json()
    assert (funnel["targeted"], funnel["excluded"], funnel["sent"], funnel["delivered"], funnel["failed"],
            funnel["in_progress"]) == (16, 10, 4, 3, 2, 1)
    assert funnel["exclusions"] == {"opted_out": 2, "duplicate": 1, "invalid_number": 1, "missing_mobile": 0,
                                    "landline": 1, "unreachable": 1, "render_failed": 0, "quiet_hours": 1,
                                    "frequency_cap": 1, "over_limit": 2, "not_sent": 0}
    assert [(f["error_code"], f["recipients"]) for f in funnel["failures"]] == [(21211, 1), (30003, 1)]
    assert all(f["meaning"].endswith(".") for f in funnel["failures"])
    assert funnel["clicked"] == {"people": 2, "people_clicks": 4, "bots": 2, "bot_clicks": 2}
    assert (funnel["replied"], funnel["opted_out_after"], funnel["track_links"]) == (2, 1, True)


async def test_another_organisations_run_or_another_campaigns_is_not_found(
    seeded: Seeded, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    other = await signed_in(db_pool, client, (await api_harness.make_org(db_pool)).id)
    for tail in ("funnel", "recipients.csv"):
        problem(await other.call("GET", _path(seeded, tail)), 404, "run_not_found")
        wrong_campaign = f"/api/v1/campaigns/{uuid.uuid4()}/runs/{seeded.run_id}/{tail}"
        problem(await seeded.staff.call("GET", wrong_campaign), 404, "run_not_found")
        problem(await client.get(_path(seeded, tail)), 401, "unauthenticated")


async def test_the_export_has_one_row_per_recipient_with_formulas_neutralised(seeded: Seeded,
                                                                             db_pool: asyncpg.Pool) -> None:
    response = await seeded.staff.call("GET", _path(seeded, "recipients.csv"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f'filename="run-{seeded.run_id}.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(RECIPIENTS)
    by_member = {r["member_id"]: r for r in rows}
    ann = by_member["ann"]
    assert (ann["outcome"], ann["clicks"], ann["bot_clicks"]) == ("delivered", "3", "1")
    assert ann["delivered_at"] and ann["sent_at"] and ann["replied_at"]
    assert ann["reply"] == "'=cmd|' /C calc'!A0"
    assert "'+SUM(1)" in by_member and by_member["'+SUM(1)"]["reply"] == ""  # STOP is consent, not a reply
    assert (by_member["cy"]["outcome"], by_member["cy"]["error_code"]) == ("undelivered", "30003")
    assert (by_member["di"]["outcome"], by_member["di"]["error_code"], by_member["di"]["sent_at"]) == (
        "failed", "21211", "")
    assert by_member["ivy"]["outcome"] == "queued" and by_member["ed"]["outcome"] == "outside_window"
    assert by_member["ned"]["outcome"] == "excluded:bad_number" and by_member["jo"]["reply"] == "Will do"
    audited = await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = "
                                     "'run.exported' AND target_id = $2", seeded.staff.org_id, str(seeded.run_id))
    assert audited == 1


async def test_home_gives_the_last_30_days_click_through_and_opt_out_rates(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    org = await api_harness.make_org(db_pool)
    staff = await signed_in(db_pool, client, org.id)
    empty = (await staff.call("GET", "/api/v1/dashboard/home")).json()["rates"]
    assert (empty["click_through_percent"], empty["opt_out_percent"]) == (None, None)

    campaign = await factories.make_campaign(db_pool, org.id, state="completed")
    tracked = await seed_run(db_pool, org.id, campaign, RECIPIENTS)
    untracked = await seed_run(db_pool, org.id, campaign, [], track_links=False)
    old = await seed_run(db_pool, org.id, campaign, RECIPIENTS[:1], started="now() - interval '40 days'")
    for run, delivered, opt_outs in ((tracked, 3, 1), (untracked, 7, 0), (old, 50, 9)):
        await db_pool.execute("INSERT INTO usage_runs (run_id, org_id, campaign_id, delivered, opt_outs) "
                              "VALUES ($1, $2, $3, $4, $5)", run, org.id, campaign, delivered, opt_outs)

    rates = (await staff.call("GET", "/api/v1/dashboard/home")).json()["rates"]
    assert (rates["delivered"], rates["tracked_delivered"], rates["clicked"], rates["opted_out"]) == (10, 3, 2, 1)
    assert (rates["click_through_percent"], rates["opt_out_percent"]) == (66.7, 10.0)
    page = (await staff.call("GET", "/", Accept="text/html")).text
    assert re.search(r'id="rate-click-through"><strong>66.7%</strong>', page)
    assert re.search(r'id="rate-opt-out"><strong>10.0%</strong>', page)


async def test_the_campaign_page_shows_the_funnel_with_a_table_and_the_export_button(seeded: Seeded) -> None:
    page = await seeded.staff.call("GET", f"/campaigns/{seeded.campaign_id}?run={seeded.run_id}", Accept="text/html")
    assert page.status_code == 200, page.text
    counts = dict(re.findall(r'<span class="funnel-count" data-step="(\w+)">([\d,]+)</span>', page.text))
    assert counts == {"targeted": "16", "excluded": "10", "sent": "4", "delivered": "3", "failed": "2",
                      "clicked": "2", "replied": "2", "opted_out": "1"}
    table = re.search(r'<table id="funnel-table">.*?</table>', page.text, re.S)
    assert table is not None
    assert re.search(r"Left out: Landline</th><td class=\"num\">1</td>", table.group(0))
    assert "Failed: 30003" in table.group(0) and "Not sent yet" in table.group(0)
    assert f'href="/api/v1/campaigns/{seeded.campaign_id}/runs/{seeded.run_id}/recipients.csv"' in page.text
