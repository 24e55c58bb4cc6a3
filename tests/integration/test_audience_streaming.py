"""The audience read a batch at a time into the run's stage: the same snapshot as the rules applied
to the whole list, repeats across pages settled by PostgreSQL, and the member cap's refusal.

Runs are resolved by calling the resolver's handler directly, with small pages and stage batches so that
every repeat crosses a page; recipient events go to this module's prefixed topic.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from harness.credentials import TEST_SECRETS, seal_credentials
from harness.kafka import running_publisher
from libs.common import audience_rules as rules
from libs.common.audience_members import stored_member
from libs.common.events import CampaignDue
from libs.common.imis_iqa import RetryPolicy
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.merge import STANDARD_FIELDS, compile_template
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS
from services.audience.db import AudienceStore
from services.audience.handlers import AudienceResolver, ImisSettings
from services.audience.publishing import RecipientPublisher
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.members.fixtures import SMALL
from standins.serving import ServerThread
from tests.integration.test_audience_service import read_all

pytestmark = pytest.mark.timeout(120)

BODY = "Hi {{first_name|there}} ({{member_id}}), renewals open today."
SNAPSHOT = ("position", "member_id", "raw_phone", "e164", "region", "merge_values", "body", "encoding", "segments",
            "reason", "detail", "duplicate_of")


def _repeating_members() -> list[Any]:
    """The small fixture set, with member 23146 returned three times (an IQA join repeating a row) and
    23159 given 23145's mobile: with pages of two rows, every repeat is on another page."""
    by_id = {m.id: m for m in SMALL}
    shared = by_id["23159"]._replace(mobile=by_id["23145"].mobile)
    return [m for m in SMALL if m.id != "23159"] + [shared, by_id["23146"], by_id["23146"]]


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_app(ImisConfig(dataset="small"), members=_repeating_members())) as server:
        yield server


@dataclass
class Streaming:
    pool: asyncpg.Pool
    bootstrap: str
    prefix: str
    imis_url: str
    store: AudienceStore
    publisher: RecipientPublisher
    http: httpx.AsyncClient

    def resolver(self, *, page_size: int = 2, stage_batch: int = 3, member_cap: int = 250_000) -> AudienceResolver:
        imis = ImisSettings(self.http, self.imis_url, RetryPolicy(3, 0.01, 0.05), page_size=page_size, read_ahead=2)
        return AudienceResolver(self.store, self.publisher, imis, publish_batch=4, stage_batch=stage_batch,
                                member_cap=member_cap)

    async def org(self, *, run_member_cap: int | None = None) -> tuple[uuid.UUID, str]:
        sender = f"+1888{random.randrange(10**7):07d}"
        async with self.pool.acquire() as conn, conn.transaction():
            org_id = await conn.fetchval("INSERT INTO organisations (slug, name, run_member_cap) "
                                         "VALUES ($1, 'Streaming test', $2) RETURNING id",
                                         f"s-{uuid.uuid4().hex[:12]}", run_member_cap)
            await conn.execute("INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url) "
                               "VALUES ($1, $2, 'x', 'https://t.example')", org_id, "AC" + uuid.uuid4().hex)
            await conn.execute("INSERT INTO senders (org_id, address, verification, is_default) "
                               "VALUES ($1, $2, 'verified', true)", org_id, sender)
            await conn.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) "
                               "VALUES ($1, $2, 'SMS_INTEGRATION', 'standin-password')", org_id, self.imis_url)
            await seal_credentials(conn)
        return org_id, sender

    async def run(self, org_id: uuid.UUID, audience: dict[str, Any]) -> CampaignDue:
        async with self.pool.acquire() as conn:
            campaign_id = await conn.fetchval(
                "INSERT INTO campaigns (org_id, name, body, audience, segment_limit, state) "
                "VALUES ($1, 'Renewals', $2, $3::jsonb, 20000, 'sending') RETURNING id",
                org_id, BODY, json.dumps(audience))
            when = datetime.now(UTC)
            run_id = await conn.fetchval("INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at) "
                                         "VALUES ($1, $2, $3) RETURNING id", org_id, campaign_id, when)
        return CampaignDue(org_id=org_id, campaign_id=campaign_id, run_id=run_id, scheduled_for=when)

    async def snapshot(self, event: CampaignDue) -> list[tuple[Any, ...]]:
        rows = await self.pool.fetch("SELECT * FROM run_recipients WHERE run_id = $1 ORDER BY position", event.run_id)
        return [tuple(json.loads(r[c]) if c == "merge_values" and r[c] is not None else r[c] for c in SNAPSHOT)
                for r in rows]

    async def events(self, event: CampaignDue) -> list[dict[str, Any]]:
        records = await read_all(self.bootstrap, RECIPIENTS.full_name(self.prefix))
        return [v for _, v in records if v.get("run_id") == str(event.run_id)]


@pytest.fixture(scope="module")
async def streaming(db_pool: asyncpg.Pool, kafka_bootstrap: str, imis: ServerThread) -> AsyncIterator[Streaming]:
    prefix = f"s{uuid.uuid4().hex[:10]}."
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE, RECIPIENTS], prefix=prefix)
    store = AudienceStore(db_pool, TEST_SECRETS)
    await store.check()
    async with (running_publisher(kafka_bootstrap, prefix) as (_, producer),
                httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http):
        yield Streaming(db_pool, kafka_bootstrap, prefix, imis.url, store, RecipientPublisher(producer, prefix=prefix),
                        http)


def _expected(members: list[rules.AudienceMember], *, suppressed: set[str],
              bad: dict[str, int]) -> list[tuple[Any, ...]]:
    """The snapshot the rules give for the whole list at once (libs/common/audience_rules.classify)."""
    template = compile_template(BODY, fields=STANDARD_FIELDS | {"first_name", "member_id", "full_name"})
    rows = rules.classify(members, template, default_country_prefix="+1", suppressed=suppressed, bad_numbers=bad)
    return [(r.position, r.member_id, r.raw_phone, r.e164, r.region, r.merge_values, r.body, r.encoding, r.segments,
             r.reason, r.detail, r.duplicate_of) for r in rows]


async def test_a_multi_page_iqa_with_repeats_across_pages(streaming: Streaming) -> None:
    org_id, sender = await streaming.org()
    event = await streaming.run(org_id, {"kind": "iqa", "query": "$/Textpulse/SMS Audience"})
    resolver = streaming.resolver(page_size=2, stage_batch=3)
    await resolver.handle(event)

    rows = await streaming.snapshot(event)
    # 15 rows, 2 a page: each page after the first is asked for from 1 row back, so it brings 1 new row.
    assert resolver.last.pages == 14 and len(rows) == 15
    assert sorted((r[1], r[9]) for r in rows if r[9] in ("duplicate_member", "duplicate_number")) == [
        ("23146", "duplicate_member"), ("23146", "duplicate_member"), ("23157", "duplicate_number"),
        ("23159", "duplicate_number")]
    repeated = [r for r in rows if r[1] == "23146"]
    assert [r[9] for r in repeated] == [None, "duplicate_member", "duplicate_member"]
    assert all(r[3] is None and r[6] is None and r[8] == 0 and r[11] == "23146" for r in repeated[1:])
    # 23145 and 23159 share a number on the first and last pages: the lower id keeps it.
    shared = {r[1]: r for r in rows if r[1] in ("23145", "23159")}
    assert (shared["23145"][9], shared["23159"][9], shared["23159"][11]) == (None, "duplicate_number", "23145")

    run = await streaming.pool.fetchrow("SELECT * FROM campaign_runs WHERE id = $1", event.run_id)
    assert run is not None
    queued = [r for r in rows if r[9] is None]
    assert (run["state"], run["targeted"], run["excluded"]) == ("sending", len(queued), len(rows) - len(queued))
    exclusions = json.loads(run["exclusions"])
    assert exclusions["duplicate_member"] == 2 and exclusions["duplicate_number"] == 2
    events = await streaming.events(event)
    assert sorted(e["to"] for e in events) == sorted(r[3] for r in queued) and {e["sender"] for e in events} == {sender}


async def test_the_streamed_snapshot_is_the_whole_list_rules_result(streaming: Streaming) -> None:
    # A CSV audience (rows may repeat a member id) of random members: numeric, text, non-ASCII and empty ids,
    # shared, suppressed, bad, invalid and missing numbers; staged 7 rows at a time.
    org_id, _ = await streaming.org()
    draw = random.Random(21)
    ids = ["1", "2", "10", "007", "7", "99999999999999999999", "a", "B", "é", "Zoë", "", "", "x1"]
    phones = ["(415) 555-0134", "415-555-0134", "4155550135", "+14155550136", "415 555 013", "", "+447700900123",
              "abc", "4155550137 x12", "(212) 555-0142"]
    lines = [(draw.choice(ids), draw.choice(phones), draw.choice(["Zoë", "Al", ""])) for _ in range(120)]
    async with streaming.pool.acquire() as conn:
        upload_id = await conn.fetchval("INSERT INTO csv_uploads (org_id, state, mapping) VALUES ($1, 'ready', "
                                        "'{\"mobile\": \"Mobile\", \"first_name\": \"First Name\"}'::jsonb) "
                                        "RETURNING id", org_id)
        await conn.executemany(
            "INSERT INTO csv_upload_rows (upload_id, line, member_id, mobile, merge_values) "
            "VALUES ($1, $2, $3, $4, $5)",
            [(upload_id, n + 2, m, p, json.dumps({"first_name": f} if f else {})) for n, (m, p, f) in enumerate(lines)])
        await conn.execute("INSERT INTO suppressions (org_id, phone, source) VALUES ($1, '+14155550136', 'keyword')",
                           org_id)
        await conn.execute("INSERT INTO bad_numbers (org_id, phone, error_code) VALUES ($1, '+14155550135', 30006)",
                           org_id)
    event = await streaming.run(org_id, {"kind": "csv", "upload_id": str(upload_id)})
    await streaming.resolver(stage_batch=7).handle(event)

    keep = {"first_name", "member_id"}  # the fields the body uses, as the service keeps them
    members = [stored_member(m, p, {"first_name": f} if f else {}, keep) for m, p, f in lines]
    expected = _expected(members, suppressed={"+14155550136"}, bad={"+14155550135": 30006})
    assert await streaming.snapshot(event) == expected
    reasons = {r[9] for r in expected}
    assert {"duplicate_member", "duplicate_number", "opted_out", "bad_number", "invalid_number", None} <= reasons


async def test_more_members_than_the_cap_refuses_the_run_and_its_campaign_is_not_sent(streaming: Streaming) -> None:
    org_id, _ = await streaming.org(run_member_cap=5)
    event = await streaming.run(org_id, {"kind": "iqa", "query": "$/Textpulse/SMS Audience"})
    await streaming.resolver(page_size=2).handle(event)

    run = await streaming.pool.fetchrow("SELECT state, state_reason FROM campaign_runs WHERE id = $1", event.run_id)
    assert run is not None
    assert run["state"] == "refused"
    assert run["state_reason"] == ("audience_too_large: The audience has 15 members; one run may have at most 5. "
                                   "Narrow the audience, or ask an admin to raise the organisation's member cap.")
    assert await streaming.pool.fetchval("SELECT state FROM campaigns WHERE id = $1", event.campaign_id) == "failed"
    assert await streaming.snapshot(event) == [] and await streaming.events(event) == []
    audit = await streaming.pool.fetchval("SELECT action FROM campaign_audit WHERE run_id = $1 AND actor = 'audience' "
                                          "AND action LIKE 'run_%' AND action <> 'run_ended'", event.run_id)
    assert audit == "run_refused"


async def test_the_platform_cap_applies_without_an_organisation_cap_and_counts_when_no_size_is_given(
    streaming: Streaming,
) -> None:
    org_id, _ = await streaming.org()
    list_id = await streaming.pool.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'Board') "
                                            "RETURNING id", org_id)
    await streaming.pool.executemany(
        "INSERT INTO member_list_entries (list_id, member_id, mobile) VALUES ($1, $2, $3)",
        [(list_id, str(n), f"+1212555{n:04d}") for n in range(10)])
    refused = await streaming.run(org_id, {"kind": "list", "list_id": str(list_id)})
    await streaming.resolver(stage_batch=3, member_cap=4).handle(refused)
    reason = await streaming.pool.fetchval("SELECT state_reason FROM campaign_runs WHERE id = $1", refused.run_id)
    assert reason.startswith("audience_too_large: The audience has at least 6 members; one run may have at most 4.")

    richer, _ = await streaming.org(run_member_cap=10)  # the organisation's own cap wins over the platform's
    list_id = await streaming.pool.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'All') "
                                            "RETURNING id", richer)
    await streaming.pool.executemany(
        "INSERT INTO member_list_entries (list_id, member_id, mobile) VALUES ($1, $2, $3)",
        [(list_id, str(n), f"+1212555{n:04d}") for n in range(10)])
    sent = await streaming.run(richer, {"kind": "list", "list_id": str(list_id)})
    await streaming.resolver(stage_batch=3, member_cap=4).handle(sent)
    run = await streaming.pool.fetchrow("SELECT state, targeted FROM campaign_runs WHERE id = $1", sent.run_id)
    assert run is not None
    assert (run["state"], run["targeted"]) == ("sending", 10)
    assert len(await streaming.events(sent)) == 10



@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection, so a test can look at the session a stage lived in."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        yield pool
    finally:
        await pool.close()


async def _stage_left(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT to_regclass('pg_temp.audience_stage')") is not None


_GOOD = [rules.SnapshotRow(0, "23145", "+14155550134", "+14155550134", "US", segments=1, body="Hi")]
_REFUSED = [rules.SnapshotRow(1, "231\x0046", "+14155550135")]  # PostgreSQL text cannot hold NUL


async def test_a_batch_whose_copy_fails_raises_from_settle_and_the_stage_is_dropped(
        one_connection: asyncpg.Pool) -> None:
    # Batches are copied while the next one is classified: a copy PostgreSQL refuses raises from the next
    # add or from settle, never silently, and the stage goes with the block.
    with pytest.raises(asyncpg.exceptions.CharacterNotInRepertoireError):
        async with AudienceStore(one_connection, TEST_SECRETS).stage() as stage:
            await stage.add(_GOOD)
            await stage.add(_REFUSED)
            await stage.settle()
    assert not await _stage_left(one_connection)


async def test_a_batch_whose_copy_fails_raises_from_the_next_add(one_connection: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.exceptions.CharacterNotInRepertoireError):
        async with AudienceStore(one_connection, TEST_SECRETS).stage() as stage:
            await stage.add(_REFUSED)
            await stage.add(_GOOD)
    assert stage.members == 1  # the refused batch was handed over; the next one never was
    assert not await _stage_left(one_connection)


async def test_a_resolution_that_fails_with_a_copy_in_flight_leaves_no_stage(one_connection: asyncpg.Pool) -> None:
    with pytest.raises(RuntimeError, match="iMIS went away"):
        async with AudienceStore(one_connection, TEST_SECRETS).stage() as stage:
            await stage.add(_GOOD)
            raise RuntimeError("iMIS went away")
    assert not await _stage_left(one_connection)
