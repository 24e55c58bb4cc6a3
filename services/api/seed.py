"""Demo data for ``make demo``: two organisations, their admins, senders and a few campaigns.

    sign_ins = await seed_demo(pool, SecretStore.from_settings(settings), webhook_base_url="http://127.0.0.1:8001")
    for email, password in sign_ins: print(email, password)

- *Harbor State Nurses Association* (US, New York time, +1): the Twilio stand-in's default account
  (``standins/twilio/config.py``, ``default_config()``) with its API key, the toll-free numbers
  +18885550100 (default) to +18885550102, a monthly plan, and campaigns in Draft, Scheduled (once and
  monthly), Completed and Archived, with the usage of the completed runs so Home has a chart.
- *Global Physiotherapy Alumni* (members in many countries, London time, default prefix +44): the
  stand-in's test credentials in test API mode, no plan (Home shows the account's cap instead).

Idempotent: an organisation whose slug exists is left exactly as it is, so re-running changes nothing
(and never resets what someone did in the demo). Returns every demo sign-in, seeded now or before.
The passwords are the demo's own and are printed by ``make demo``; they are not secrets. The Twilio tokens are
stored sealed, as every credential is (libs/common/secret_store.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from libs.common import schedules
from libs.common.db import Connection, transaction
from libs.common.secret_store import API_KEY_SECRET, AUTH_TOKEN, SecretStore
from services.api import auth, auth_db, db

# The Twilio stand-in's default account (standins/twilio/config.py default_config(); a test checks
# they agree). Fake values from docs/twilio.md#webhook-signatures (its worked example): never real credentials.
STANDIN_ACCOUNT_SID = "ACee08e93f9e75863cc27e95aabf22ae4e"
STANDIN_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
STANDIN_API_KEY_SID = "SK61b4dbe1325f7e920f15ccc8554dc34e"
STANDIN_API_KEY_SECRET = "standin-api-key-secret-000000000"
STANDIN_TEST_ACCOUNT_SID = "ACa67aeeff7a4c2cd3cd73fa5b2a012169"
STANDIN_TEST_AUTH_TOKEN = "fedcba9876543210fedcba9876543210"
# Twilio's magic "From" number for test credentials: it always succeeds.
TEST_FROM_NUMBER = "+15005550006"

_SEED_LOCK = 0x7E47_0010  # serialises two seeders started together


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    role: str
    name: str


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    name: str
    time_zone: str
    prefix: str
    users: tuple[DemoUser, ...]
    account: dict[str, Any]
    senders: tuple[tuple[str, str, bool], ...]  # address, kind, is_default
    plan: tuple[str, int] | None
    alert_emails: tuple[str, ...] = ()
    campaigns: list[dict[str, Any]] = field(default_factory=list)


def demo_orgs(now: datetime) -> list[DemoOrg]:
    us_tz, uk_tz = "America/New_York", "Europe/London"
    next_week = (now.astimezone(ZoneInfo(us_tz)) + timedelta(days=7)).replace(hour=10, minute=0, tzinfo=None)
    uk_date = (now.astimezone(ZoneInfo(uk_tz)) + timedelta(days=12)).replace(hour=18, minute=30, tzinfo=None)
    first_of_next_month = (now.astimezone(ZoneInfo(us_tz)).replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=18, minute=30, tzinfo=None)
    iqa = {"kind": "iqa", "query": "$/Textpulse/SMS Audience"}
    return [
        DemoOrg(
            slug="harbor-nurses",
            name="Harbor State Nurses Association",
            time_zone=us_tz,
            prefix="+1",
            users=(DemoUser("admin@harbornurses.example.org", "harbor-demo-admin", "admin", "Dana Whitfield"),
                   DemoUser("staff@harbornurses.example.org", "harbor-demo-staff", "staff", "Sam Ortiz")),
            account={"account_sid": STANDIN_ACCOUNT_SID, "auth_token": STANDIN_AUTH_TOKEN,
                     "api_key_sid": STANDIN_API_KEY_SID, "api_key_secret": STANDIN_API_KEY_SECRET,
                     "friendly_name": "Textpulse stand-in", "account_type": "Full", "alpha_sender_id": None,
                     "max_segments": 30_000, "test_mode": False},
            senders=(("+18885550100", "toll_free", True), ("+18885550101", "toll_free", False),
                     ("+18885550102", "toll_free", False)),
            plan=("Association Standard", 50_000),
            alert_emails=("office@harbornurses.example.org",),
            campaigns=[
                {"name": "Spring conference early-bird", "state": "draft", "audience": iqa,
                 "body": "Hi {{first_name|there}}, early-bird registration for the Spring Conference closes "
                         "Friday. Book at harbornurses.example.org/spring"},
                {"name": "Membership renewal reminder", "state": "scheduled", "audience": iqa,
                 "schedule": ("at", next_week),
                 "body": "Hi {{first_name|there}}, your HSNA membership renews on the 1st. Renew online at "
                         "harbornurses.example.org/renew or call 555-0134."},
                {"name": "Monthly CE webinar", "state": "scheduled", "audience": iqa,
                 "schedule": ("rrule", "FREQ=MONTHLY;BYDAY=2TU", first_of_next_month),
                 "body": "CE webinar tonight at 7pm: 1.5 contact hours, free for members. Join at "
                         "harbornurses.example.org/ce"},
                {"name": "Board election results", "state": "completed", "audience": iqa, "ran_days_ago": 5,
                 "figures": (1_184, 1_171, 9, 2),
                 "body": "The 2026 board election results are in. Thank you to the 412 members who voted! "
                         "Results: harbornurses.example.org/vote"},
                {"name": "Legislative day reminder", "state": "completed", "audience": iqa, "ran_days_ago": 16,
                 "figures": (1_160, 1_151, 5, 1),
                 "body": "Legislative Day is tomorrow. Meet at the Capitol steps at 8:30am; buses leave HQ at 7."},
                {"name": "Holiday office hours", "state": "archived", "audience": iqa, "ran_days_ago": 26,
                 "figures": (1_130, 1_122, 6, 0),
                 "body": "Our office is closed Dec 24-Jan 1. Member services reopen Jan 2 at 9am."},
            ],
        ),
        DemoOrg(
            slug="global-physio-alumni",
            name="Global Physiotherapy Alumni",
            time_zone=uk_tz,
            prefix="+44",
            users=(DemoUser("admin@physioalumni.example.org", "physio-demo-admin", "admin", "Priya Raman"),),
            account={"account_sid": STANDIN_TEST_ACCOUNT_SID, "auth_token": STANDIN_TEST_AUTH_TOKEN,
                     "api_key_sid": None, "api_key_secret": None, "friendly_name": "Alumni (test credentials)",
                     "account_type": "Full", "alpha_sender_id": "PhysioAlum", "max_segments": 15_000,
                     "test_mode": True},
            senders=((TEST_FROM_NUMBER, "long_code", True),),
            plan=None,
            alert_emails=("events@physioalumni.example.org",),
            campaigns=[
                # The curly apostrophe makes this UCS-2: the composer offers the one-click GSM-7 fix.
                {"name": "Welcome, new graduates", "state": "draft", "audience": iqa,
                 "body": "Welcome to the alumni network, {{first_name|friend}}! We’re glad you’re here."},
                {"name": "Reunion dinner, London", "state": "scheduled", "audience": iqa,
                 "schedule": ("at", uk_date),
                 "body": "Reunion dinner on Saturday, 7pm at the Royal Society of Medicine. Reply YES to book."},
            ],
        ),
    ]


async def seed_demo(pool: asyncpg.Pool, secrets: SecretStore, *,
                    webhook_base_url: str = "http://127.0.0.1:8001") -> list[tuple[str, str]]:
    """Create the demo organisations that do not exist yet; return every demo (email, password)."""
    now = datetime.now(UTC)
    orgs = demo_orgs(now)
    async with pool.acquire() as lock:
        await lock.execute("SELECT pg_advisory_lock($1)", _SEED_LOCK)
        try:
            for org in orgs:
                async with transaction(pool) as conn:
                    if await conn.fetchval("SELECT 1 FROM organisations WHERE slug = $1", org.slug):
                        continue
                    await _seed_org(conn, secrets, org, now, webhook_base_url)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", _SEED_LOCK)
    return [(user.email, user.password) for org in orgs for user in org.users]


async def _seed_org(conn: Connection, secrets: SecretStore, org: DemoOrg, now: datetime,
                    webhook_base_url: str) -> None:
    org_id: UUID = await conn.fetchval(
        """INSERT INTO organisations (slug, name, time_zone, default_country_prefix, campaign_segment_limit,
                                      alert_emails)
           VALUES ($1, $2, $3, $4, 20000, $5) RETURNING id""",
        org.slug, org.name, org.time_zone, org.prefix, list(org.alert_emails))
    a = org.account
    auth_token = await secrets.seal(conn, org_id, AUTH_TOKEN, a["auth_token"])
    api_key_secret = a["api_key_secret"] and await secrets.seal(conn, org_id, API_KEY_SECRET, a["api_key_secret"])
    await conn.execute(
        """INSERT INTO sms_accounts (org_id, account_sid, auth_token, api_key_sid, api_key_secret, friendly_name,
                                     account_type, alpha_sender_id, max_segments, test_mode, webhook_base_url)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        org_id, a["account_sid"], auth_token, a["api_key_sid"], api_key_secret, a["friendly_name"],
        a["account_type"], a["alpha_sender_id"], a["max_segments"], a["test_mode"], webhook_base_url)
    for address, kind, is_default in org.senders:
        await conn.execute("INSERT INTO senders (org_id, address, kind, is_default) VALUES ($1, $2, $3, $4)",
                           org_id, address, kind, is_default)
    if org.plan is not None:
        await conn.execute("INSERT INTO subscriptions (org_id, plan, monthly_segment_allowance) VALUES ($1, $2, $3)",
                           org_id, *org.plan)
    for user in org.users:
        password_hash = await asyncio.to_thread(auth.hash_password, user.password)
        await auth_db.insert_user(conn, org_id, user.email, user.name, password_hash, user.role)
    actor = org.users[0].email
    for spec in org.campaigns:
        await _seed_campaign(conn, org, org_id, spec, actor, now)


async def _seed_campaign(
    conn: Connection, org: DemoOrg, org_id: UUID, spec: dict[str, Any], actor: str, now: datetime
) -> None:
    fields = {"name": spec["name"], "body": spec["body"], "audience": spec["audience"], "sender_id": None,
              "contact_email": None, "segment_limit": 20_000, "validity_period_s": 14_400, "send_when_late": False,
              "max_lateness_s": 3600}
    campaign_id = await db.insert_campaign(conn, org_id, fields, actor)
    await db.record_audit(conn, org_id=org_id, campaign_id=campaign_id, actor=actor, action="created", to_state="draft")
    if spec["state"] == "scheduled":
        kind, *rest = spec["schedule"]
        schedule = (schedules.send_at(rest[0], org.time_zone, now=now) if kind == "at"
                    else schedules.recurring(rest[0], rest[1], org.time_zone, now=now))
        first = schedules.next_occurrence(schedule, after=now, inclusive=True)
        await db.set_schedule(conn, campaign_id, schedules.to_json(schedule), first, "scheduled", actor)
        await db.record_audit(conn, org_id=org_id, campaign_id=campaign_id, actor=actor, action="scheduled",
                              from_state="draft", to_state="scheduled")
    elif spec["state"] in ("completed", "archived"):
        await _seed_finished_run(conn, org, org_id, campaign_id, spec, actor, now)


async def _seed_finished_run(
    conn: Connection, org: DemoOrg, org_id: UUID, campaign_id: UUID, spec: dict[str, Any], actor: str,
    now: datetime,
) -> None:
    """A finished send-now run with its counters, and the usage rollups it would have produced."""
    sent_at = (now - timedelta(days=spec["ran_days_ago"])).replace(second=0, microsecond=0)
    targeted, delivered, failed, opt_outs = spec["figures"]
    segments_each = 1 if len(spec["body"]) <= 160 else 2
    price = Decimal("0.0083") * segments_each
    await db.set_schedule(conn, campaign_id, schedules.to_json(schedules.send_now(sent_at)), None, "scheduled", actor)
    run_id = await conn.fetchval(
        """INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, origin, state, published_at, started_at,
                                      finished_at, resolved_at, targeted, excluded, sent, delivered, failed, segments,
                                      planned_segments, cost, estimated_cost, exclusions)
           VALUES ($1, $2, $3, 'send_now', 'completed', $3, $3, $12, $3, $4, $5, $6, $7, $8,
                   $9, $9, $10, $10, $11::jsonb)
           RETURNING id""",
        org_id, campaign_id, sent_at, targeted, 37, targeted - failed, delivered, failed,
        (targeted - failed) * segments_each, price * (targeted - failed),
        json.dumps({"opted_out": 21, "missing_mobile": 12, "duplicate_number": 4}), sent_at + timedelta(minutes=7))
    # The campaign goes the way a sent one does (PostgreSQL refuses any move its table does not allow).
    for state in ("sending", "completed", "archived")[: 3 if spec["state"] == "archived" else 2]:
        await conn.execute(
            "UPDATE campaigns SET state = $2, state_changed_at = $3, updated_at = $3 WHERE id = $1",
            campaign_id, state, sent_at + timedelta(minutes=7))
    day: date = sent_at.astimezone(ZoneInfo(org.time_zone)).date()
    messages, segments = targeted - failed, (targeted - failed) * segments_each
    cost, fees = price * messages, Decimal("0.001") * failed
    await conn.execute(
        """INSERT INTO usage_runs (run_id, org_id, campaign_id, messages, segments, delivered, undelivered, failed,
                                   opt_outs, segment_cost, failed_fees, reported_cost)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10)""",
        run_id, org_id, campaign_id, messages, segments, delivered, messages - delivered, failed, opt_outs, cost, fees)
    await conn.execute(
        """INSERT INTO usage_daily (org_id, day, messages, segments, delivered, undelivered, failed, opt_outs,
                                    segment_cost, failed_fees, reported_cost)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9)""",
        org_id, day, messages, segments, delivered, messages - delivered, failed, opt_outs, cost, fees)
    for code, count in ((30003, failed - failed // 2), (21614, failed // 2)):
        if count:
            await conn.execute("INSERT INTO usage_run_errors (run_id, error_code, messages) VALUES ($1, $2, $3)",
                               run_id, code, count)
    await db.record_audit(conn, org_id=org_id, campaign_id=campaign_id, actor=actor, action="sent_now",
                          from_state="draft", to_state="scheduled", run_id=run_id)
