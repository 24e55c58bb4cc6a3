"""The dashboard's data and pages on the real database: the message preview, Home from the usage rollups
with live sending progress, the campaign list, composer and campaign page, and the static assets."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.integration import api_harness
from tests.integration.api_harness import Caller, problem, signed_in

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_client(database_url, kafka_bootstrap) as client:
        yield client


@pytest.fixture
async def staff(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool, time_zone="America/Los_Angeles")
    return await signed_in(db_pool, client, org.id)


async def preview(caller: Caller, **body: Any) -> httpx.Response:
    return await caller.call("POST", "/api/v1/messages/preview", body)


async def test_a_tracked_preview_shows_and_counts_the_short_link_a_member_gets(staff: Caller) -> None:
    url = "https://example.org/members/renewals/" + "2026-annual-renewal-" * 7
    body = f"Hi {{{{first_name}}}}, renew: {url}"
    plain = (await preview(staff, body=body)).json()
    tracked = (await preview(staff, body=body, track_links=True)).json()
    assert plain["segments"] == 2 and url in plain["body"]
    assert tracked["segments"] == 1
    assert tracked["short_link_length"] == len("http://127.0.0.1:8005/") + 12 and plain["short_link_length"] is None
    assert re.fullmatch(r"Hi Alex, renew: http://127\.0\.0\.1:8005/[A-Za-z0-9_-]{12}", tracked["body"])
    refused = await preview(staff, body="See ftp://files.example.org/agm", track_links=True)
    assert problem(refused, 422, "link_scheme_invalid")["errors"][0]["field"] == "body"


async def test_the_preview_counts_explains_ucs2_and_estimates_the_cost(
    staff: Caller, db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    gsm = (await preview(staff, body="Hi {{first_name}}, renewal time!")).json()
    assert (gsm["encoding"], gsm["segments"], gsm["body"]) == ("GSM-7", 1, "Hi Alex, renewal time!")
    assert gsm["remaining_in_segment"] == 160 - len("Hi Alex, renewal time!") and gsm["smart_encoded"] is None

    curly = (await preview(staff, body="Hi {{first_name}}, it’s renewal time!", recipients=1000)).json()
    assert curly["encoding"] == "UCS-2" and curly["remaining_in_segment"] == 70 - len("Hi Alex, it’s renewal time!")
    assert [(c["character"], c["replacement"]) for c in curly["ucs2_characters"]] == [("’", "'")]
    assert curly["smart_encoded"]["encoding"] == "GSM-7"
    assert curly["estimate"] == {"recipients": 1000, "segments": 1000, "send_cost": str(Decimal("0.0083") * 1000),
                                 "failed_message_fee": "0.001", "pumping_protection_may_apply": False,
                                 "segment_limit": 20_000, "over_limit": False}
    long_text = "x" * 200  # two GSM-7 segments
    over = (await preview(staff, body=long_text, recipients=600, segment_limit=1000)).json()["estimate"]
    assert (over["segments"], over["over_limit"]) == (1200, True)

    capped_org = await api_harness.make_org(db_pool, max_segments=800, prefix="+44")
    capped = await signed_in(db_pool, client, capped_org.id)
    uk = (await preview(capped, body="Hello", recipients=900)).json()
    assert uk["country"] == "GB" and "pumping_protection_may_apply" in uk["warnings"]
    assert uk["estimate"]["segment_limit"] == 800 and uk["estimate"]["over_limit"]

    for body, field, code in [({"body": "Hi {{frist_name}}"}, "body", "merge_unknown_field"),
                              ({"body": ""}, "body", "body_empty"),
                              ({"body": "Hi", "country": "1X"}, "country", "country_invalid")]:
        refused = problem(await preview(staff, **body), 422, code)
        assert refused["errors"][0]["field"] == field
    problem(await client.post("/api/v1/messages/preview", json={"body": "Hi"}), 401, "unauthenticated")


async def test_home_reads_the_usage_rollups_in_the_organisations_own_calendar(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    today = datetime.now(ZoneInfo("America/Los_Angeles")).date()
    yesterday = today - timedelta(days=1)
    rows = [(today, False, 120, 3), (today, True, 999, 0), (yesterday, False, 80, 1),
            (today - timedelta(days=40), False, 70, 0)]
    for day, test, segments, failed in rows:
        await db_pool.execute(
            """INSERT INTO usage_daily (org_id, day, test, messages, segments, failed, segment_cost, failed_fees)
               VALUES ($1, $2, $3, $4::int, $4::int, $5::int, $4::int * 0.0083, $5::int * 0.001)""",
            staff.org_id, day, test, segments, failed)
    other = await api_harness.make_org(db_pool)
    await db_pool.execute("INSERT INTO usage_daily (org_id, day, segments) VALUES ($1, $2, 5000)", other.id, today)
    await db_pool.execute(
        "INSERT INTO subscriptions (org_id, plan, monthly_segment_allowance) VALUES ($1, 'Basic', 1000)", staff.org_id)

    home = (await staff.call("GET", "/api/v1/dashboard/home")).json()
    usage = home["usage"]
    month = 120 + (80 if yesterday.month == today.month else 0)
    assert usage["today"] == today.isoformat() and usage["segments_today"] == 120
    assert usage["segments_this_month"] == month and home["plan"]["used_percent"] == month * 100 // 1000
    assert home["plan"]["plan"] == "Basic" and home["plan"]["monthly_segment_allowance"] == 1000
    days = usage["days"]
    assert len(days) == 30 and days[-1]["day"] == today.isoformat() and days[-2]["segments"] == 80
    assert sum(d["segments"] for d in days) == 200 and sum(d["failed"] for d in days) == 4
    assert Decimal(days[-1]["cost"]) == Decimal("120") * Decimal("0.0083") + Decimal("0.003")

    page = await staff.call("GET", "/", **HTML)
    assert page.status_code == 200
    assert re.search(r'id="stat-today".*?<div class="value"[^>]*>120</div>', page.text, re.S)
    assert "200 segments and 4 failed messages over 30 days" in page.text
    found = re.search(r'<script type="application/json" id="usage-chart-data">(.*?)</script>', page.text, re.S)
    assert found is not None, "the chart's data block is missing"
    chart = json.loads(found.group(1))
    assert len(chart["segments"]) == 30 and chart["segments"][-2:] == [80, 120] and chart["failed"][-1] == 3
    assert chart["cost"][-1] == "1.00" and chart["labels"][-1] == f"{today.day} {today:%b}"


async def test_home_counts_campaigns_by_state_and_measures_what_is_sending(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    ids = {}
    for state in ("draft", "draft", "scheduled", "sending", "paused", "completed", "cancelled", "archived"):
        ids[state] = await db_pool.fetchval(
            "INSERT INTO campaigns (org_id, name, state) VALUES ($1, $2, $3) RETURNING id",
            staff.org_id, f"{state} campaign", state)
    started = datetime.now(UTC) - timedelta(minutes=10)
    runs = {}
    for state in ("sending", "paused"):
        runs[state] = await db_pool.fetchval(
            """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent, failed,
                                          dropped)
               VALUES ($1, $2, $3, $4, $3, 1000, 400, 10, 5) RETURNING id""",
            staff.org_id, ids[state], started, state)
    await db_pool.executemany(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, sent_at,
                                    updated_at)
           VALUES ($1, $2, $3, '+18885550100', '+14155550100', 1, $4,
                   CASE WHEN $4 = 'sent' THEN now() - make_interval(secs => $5) END,
                   now() - make_interval(secs => $5))""",
        [(runs["sending"], uuid.uuid4(), staff.org_id, "sent", 20.0) for _ in range(90)]
        + [(runs["sending"], uuid.uuid4(), staff.org_id, "sent", 600.0) for _ in range(300)]
        + [(runs["sending"], uuid.uuid4(), staff.org_id, "claimed", 1.0) for _ in range(3)])

    home = (await staff.call("GET", "/api/v1/dashboard/home")).json()
    assert home["campaigns_by_state"] == {"draft": 2, "in_review": 0, "approved": 0, "scheduled": 1, "sending": 1,
                                          "paused": 1, "completed": 1, "cancelled": 1, "failed": 0, "archived": 1}
    sending = {s["state"]: s for s in home["sending"]}
    live = sending["sending"]
    assert (live["total"], live["done"], live["percent"], live["per_minute"]) == (1000, 415, 41, 90)
    finish = datetime.fromisoformat(live["expected_finish"])
    assert abs((finish - datetime.now(UTC)).total_seconds() - 585 / 1.5) < 30
    assert sending["paused"]["per_minute"] == 0 and sending["paused"]["expected_finish"] is None
    polled = (await staff.call("GET", "/api/v1/dashboard/sending")).json()
    assert [(p["run_id"], p["done"]) for p in polled] == [(s["run_id"], s["done"]) for s in home["sending"]]


async def test_the_rate_counts_sends_by_when_they_were_sent_not_when_a_callback_touched_them(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await db_pool.fetchval("INSERT INTO campaigns (org_id, name, state) VALUES ($1, 'Live', 'sending') "
                                      "RETURNING id", staff.org_id)
    run = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent)
           VALUES ($1, $2, now() - interval '10 minutes', 'sending', now() - interval '10 minutes', 2000, 218)
           RETURNING id""", staff.org_id, campaign)
    # 180 sends in the last minute (within its first 50 seconds, so a slow test run keeps them in the
    # window), and 38 sent before it whose "delivered" callbacks arrived within it. The sender's pace is
    # raised so that only the counting, not the cap at the pace, can give 180.
    await db_pool.execute("UPDATE senders SET segments_per_second = 10 WHERE org_id = $1", staff.org_id)
    await db_pool.executemany(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, twilio_status,
                                    sent_at, updated_at)
           VALUES ($1, $2, $3, '+18885550100', '+14155550100', 1, 'sent', 'delivered',
                   now() - make_interval(secs => $4), now() - make_interval(secs => $5))""",
        [(run, uuid.uuid4(), staff.org_id, i * 50 / 180, i * 50 / 180) for i in range(180)]
        + [(run, uuid.uuid4(), staff.org_id, 70.0 + i / 3, 5.0) for i in range(38)])
    [live] = (await staff.call("GET", "/api/v1/dashboard/sending")).json()
    assert live["per_minute"] == 180


async def test_delivered_is_never_shown_above_sent(staff: Caller, db_pool: asyncpg.Pool) -> None:
    campaign = await db_pool.fetchval("INSERT INTO campaigns (org_id, name, state) VALUES ($1, 'Done', 'completed') "
                                      "RETURNING id", staff.org_id)
    run = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted, sent)
           VALUES ($1, $2, now(), 'sending', 50, 40) RETURNING id""", staff.org_id, campaign)
    # The usage service counted 45 deliveries (each after its send result) while the run's own sent count,
    # refreshed from the ledger now and then, still says 40.
    await db_pool.execute(
        """INSERT INTO usage_runs (run_id, org_id, campaign_id, test, messages, segments, delivered)
           VALUES ($1, $2, $3, false, 45, 45, 45)""", run, staff.org_id, campaign)
    page = (await staff.call("GET", f"/campaigns/{campaign}", **HTML)).text
    row = re.search(r'<td class="num">50</td>\s*<td class="num">0</td>\s*<td class="num">(\d+)</td>\s*'
                    r'<td class="num">(\d+)</td>', page)
    assert row is not None, "the run's row is missing"
    sent, delivered = int(row.group(1)), int(row.group(2))
    assert (sent, delivered) == (45, 45)


async def test_the_campaign_list_filters_by_tab_and_searches_literally(staff: Caller, db_pool: asyncpg.Pool) -> None:
    for name, state in [("Gala night", "draft"), ("50% off renewals", "scheduled"), ("Board results", "archived")]:
        await db_pool.execute("INSERT INTO campaigns (org_id, name, state, body) VALUES ($1, $2, $3, 'Hello')",
                              staff.org_id, name, state)
    everything = (await staff.call("GET", "/campaigns", **HTML)).text
    assert "Gala night" in everything and "50% off renewals" in everything and "Board results" not in everything
    archived = (await staff.call("GET", "/campaigns?tab=archived", **HTML)).text
    assert "Board results" in archived and "Gala night" not in archived
    percent = (await staff.call("GET", "/campaigns?q=50%25", **HTML)).text
    assert "50% off renewals" in percent and "Gala night" not in percent
    underscore = (await staff.call("GET", "/campaigns?q=_", **HTML)).text
    assert "No campaign matches" in underscore


async def test_the_composer_and_the_campaign_page_show_what_staff_need(staff: Caller, db_pool: asyncpg.Pool) -> None:
    created = await staff.call("POST", "/api/v1/campaigns", {
        "name": "Renewals", "body": "Hi {{first_name}}, renew by Friday <b>now</b>",
        "audience": {"kind": "iqa", "query": "$/Members/Renewals"}})
    campaign = created.json()
    composer = await staff.call("GET", f"/campaigns/{campaign['id']}/edit", **HTML)
    assert composer.status_code == 200
    config = json.loads(re.search(r'id="composer-config">(.*?)</script>', composer.text, re.S).group(1))
    assert config["campaign"]["id"] == campaign["id"] and config["country"] == "US"
    assert config["timeZone"] == "America/Los_Angeles" and config["orgSegmentLimit"] == 20_000
    assert "&lt;b&gt;now&lt;/b&gt;" in composer.text  # the body is escaped, never markup
    assert (await staff.call("GET", "/campaigns/new", **HTML)).status_code == 200

    run_id = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, targeted, excluded, sent, failed)
           VALUES ($1, $2, now(), 'completed', 2, 1, 1, 1) RETURNING id""", staff.org_id, uuid.UUID(campaign["id"]))
    for state in ("sending", "completed"):  # the way a sent campaign goes (the table refuses draft -> completed)
        await db_pool.execute("UPDATE campaigns SET state = $2 WHERE id = $1", uuid.UUID(campaign["id"]), state)
    sent, failed = uuid.uuid4(), uuid.uuid4()
    await db_pool.executemany(
        """INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, body, segments, status,
                                       reason, merge_values)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)""",
        [(run_id, 0, sent, staff.org_id, "1001", "+14155550101", "Hi Ann", 1, "queued", None, '{"first_name": "Ann"}'),
         (run_id, 1, failed, staff.org_id, "1002", "+14155550102", "Hi Bo", 1, "queued", None, '{"first_name": "Bo"}'),
         (run_id, 2, uuid.uuid4(), staff.org_id, "1003", None, None, 0, "excluded", "missing_mobile", None)])
    await db_pool.executemany(
        """INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, twilio_status,
                                    error_code)
           VALUES ($1, $2, $3, '+18885550100', $4, 1, $5, $6, $7)""",
        [(run_id, sent, staff.org_id, "+14155550101", "sent", "delivered", None),
         (run_id, failed, staff.org_id, "+14155550102", "failed", "undelivered", 30003)])
    await db_pool.execute("INSERT INTO usage_run_errors (run_id, error_code, messages) VALUES ($1, 30003, 1)", run_id)

    page = await staff.call("GET", f"/campaigns/{campaign['id']}", **HTML)
    assert page.status_code == 200
    assert "The phone is off or out of reach." in page.text
    assert "Left out: no mobile number" in page.text and "undelivered · error 30003" in page.text
    assert 'data-api-action="/api/v1/campaigns/' + campaign["id"] + '/archive"' in page.text
    found = await staff.call("GET", f"/campaigns/{campaign['id']}?run={run_id}&q=Ann", **HTML)
    assert "+14155550101" in found.text and "+14155550102" not in found.text
    edit = await staff.call("GET", f"/campaigns/{campaign['id']}/edit", **HTML)
    assert edit.status_code == 303 and edit.headers["location"] == f"/campaigns/{campaign['id']}"


async def test_static_assets_are_served_here_and_the_openapi_document_is_complete(
    client: httpx.AsyncClient, staff: Caller
) -> None:
    page = await staff.call("GET", "/", **HTML)
    script = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page.text)
    assert script is not None
    asset = await client.get(script.group(1))
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    assert "immutable" in asset.headers["cache-control"]
    assert "no-cache" in (await client.get("/static/app.js")).headers["cache-control"]
    # Chart.js comes from npm (services/api/frontend, installed by `make setup`), served from here.
    chart_js = re.search(r'src="(/static/vendor/chart\.js/chart\.umd\.min\.js\?v=[0-9a-f]{10})"', page.text)
    assert chart_js is not None, "Home does not load Chart.js from /static/vendor"
    library = await client.get(chart_js.group(1))
    assert library.status_code == 200 and "javascript" in library.headers["content-type"]
    assert "Chart.js v4." in library.text[:200] and "immutable" in library.headers["cache-control"]
    assert not re.search(r"https?://(?!www\.twilio\.com/docs)", page.text.split("</head>")[0])  # no CDN
    assert (await client.get("/docs")).status_code == 404

    document = (await client.get("/openapi.json")).json()
    assert set(document["components"]["securitySchemes"]) == {"apiKey", "session"}
    paths = document["paths"]
    for path in ["/api/v1/messages/preview", "/api/v1/dashboard/home", "/api/v1/dashboard/sending",
                 "/api/v1/settings", "/api/v1/settings/general", "/api/v1/settings/country",
                 "/api/v1/settings/sms-account", "/api/v1/settings/sms-account/credentials",
                 "/api/v1/settings/sms-account/api-key", "/api/v1/senders", "/api/v1/users",
                 "/api/v1/api-keys", "/api/v1/me", "/api/v1/audiences", "/api/v1/suppressions"]:
        assert path in paths, path
    assert "/sign-in" not in paths and "/" not in paths


async def test_runs_count_recipients_outside_their_window_and_over_a_cap_on_home_and_the_campaign_page(
    staff: Caller, db_pool: asyncpg.Pool
) -> None:
    campaign = await db_pool.fetchval("INSERT INTO campaigns (org_id, name, state) VALUES ($1, 'Gala', 'sending') "
                                      "RETURNING id", staff.org_id)
    run = await db_pool.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, started_at, targeted, sent,
                                      outside_window, frequency_capped)
           VALUES ($1, $2, now() - interval '10 minutes', 'sending', now() - interval '10 minutes', 100, 40, 7, 3)
           RETURNING id""", staff.org_id, campaign)
    sending = {s["run_id"]: s for s in (await staff.call("GET", "/api/v1/dashboard/sending")).json()}[str(run)]
    assert (sending["outside_window"], sending["frequency_capped"], sending["done"]) == (7, 3, 50)
    home = await staff.client.get("/", headers=staff.headers)
    assert "7 outside texting hours · 3 over a cap" in home.text
    runs = (await staff.call("GET", f"/api/v1/campaigns/{campaign}/runs")).json()
    assert (runs[0]["outside_window"], runs[0]["frequency_capped"]) == (7, 3)
    page = await staff.client.get(f"/campaigns/{campaign}", headers=staff.headers)
    assert re.search(r'data-outcome="outside_window">7<', page.text)
    assert re.search(r'data-outcome="frequency_capped">3<', page.text)
