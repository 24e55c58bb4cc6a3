"""The audience service through the real broker, PostgreSQL and the iMIS stand-in over HTTP.

campaign-due in -> snapshot rows, run figures and recipient events out (on this module's prefixed topics).
"No event was published" is checked with a sentinel: a later campaign-due of the same campaign lands on
the same partition, so once its run has been resolved the earlier event has been handled too.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from harness import factories
from harness.credentials import TEST_SECRETS
from harness.kafka import delete_topics_with_prefix, new_prefix, running_consumer, running_publisher
from libs.common.csv_audience import CsvStream
from libs.common.events import CampaignDue
from libs.common.imis_iqa import RetryPolicy
from libs.common.kafka import EventConsumer, EventPublisher, ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CAMPAIGN_DUE, RECIPIENTS
from services.api import erasure, upload_storage, uploads_db
from services.audience.db import AudienceStore
from services.audience.handlers import AudienceResolver, ImisSettings
from services.audience.publishing import RecipientPublisher
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.members.fixtures import SMALL
from standins.serving import ServerThread
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(90)

BODY = "Hi {{first_name|there}}, renewals open today. Reply STOP to opt out."
AUDIENCE = {"kind": "iqa", "query": "$/Textpulse/SMS Audience"}
FINAL = ("sending", "completed", "failed", "over_limit", "refused")


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_app(ImisConfig(dataset="small"))) as server:
        yield server


@dataclass
class Harness:
    pool: asyncpg.Pool
    publisher: EventPublisher
    bootstrap: str
    prefix: str
    imis_url: str
    resolver: AudienceResolver

    async def org(self, *, verification: str = "verified", max_segments: int | None = None,
                  imis_url: str | None = None, query_endpoint: str = "iqa") -> tuple[uuid.UUID, str]:
        sender = f"+1888{random.randrange(10**7):07d}"
        async with self.pool.acquire() as conn, conn.transaction():
            org_id = await factories.make_org(conn, slug=factories.new_slug("a"), name="Audience test")
            await factories.make_sms_account(conn, org_id, auth_token="x", webhook_base_url="https://t.example",
                                             max_segments=max_segments)
            await factories.make_sender(conn, org_id, sender, verification=verification, is_default=True)
            await factories.make_imis_account(conn, org_id, base_url=imis_url or self.imis_url,
                                              query_endpoint=query_endpoint)
        return org_id, sender

    async def run(self, org_id: uuid.UUID, *, audience: dict[str, Any] = AUDIENCE, body: str = BODY,
                  segment_limit: int = 20_000, campaign_id: uuid.UUID | None = None,
                  track_links: bool = False) -> CampaignDue:
        if campaign_id is None:
            campaign_id = await factories.make_campaign(self.pool, org_id, body=body, audience=audience,
                                                        segment_limit=segment_limit, state="sending",
                                                        track_links=track_links)
        when = datetime.now(UTC)
        run_id = await factories.make_run(self.pool, org_id, campaign_id, occurrence_at=when)
        return CampaignDue(org_id=org_id, campaign_id=campaign_id, run_id=run_id, scheduled_for=when)

    async def due(self, event: CampaignDue) -> None:
        await self.publisher.publish(CAMPAIGN_DUE, event, key=str(event.campaign_id))

    async def settled(self, event: CampaignDue) -> asyncpg.Record:
        async def probe() -> asyncpg.Record | None:
            row = await self.pool.fetchrow("SELECT * FROM campaign_runs WHERE id = $1", event.run_id)
            return row if row["state"] in FINAL else None
        return await eventually(probe, timeout=30)

    async def fully_published(self, event: CampaignDue) -> None:
        await eventually(lambda: self.pool.fetchval(
            "SELECT count(*) = 0 FROM run_recipients s JOIN campaign_runs r ON r.id = s.run_id "
            "WHERE s.run_id = $1 AND s.status = 'queued' AND s.position > r.published_through", event.run_id))

    async def sentinel(self, after: CampaignDue) -> None:
        """Resolve one more run of the same campaign: once it is done, ``after`` has been handled too."""
        later = await self.run(after.org_id, campaign_id=after.campaign_id)
        await self.due(later)
        await self.settled(later)

    async def campaign_state(self, event: CampaignDue) -> str:
        return await self.pool.fetchval("SELECT state FROM campaigns WHERE id = $1", event.campaign_id)

    async def snapshot(self, event: CampaignDue) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT * FROM run_recipients WHERE run_id = $1 ORDER BY position", event.run_id)

    async def recipients(self, event: CampaignDue) -> list[tuple[str, dict[str, Any]]]:
        """Every recipient event of the run on the topic so far: (key, value)."""
        records = await read_all(self.bootstrap, RECIPIENTS.full_name(self.prefix))
        return [(k, v) for k, v in records if v.get("run_id") == str(event.run_id)]

    async def imis_tokens(self) -> int:
        return int((await self.imis_stats())["tokens_issued"])

    async def imis_stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.imis_url) as client:
            stats: dict[str, Any] = (await client.get("/_control/stats")).json()
            return stats

    async def dead_letters(self) -> list[dict[str, Any]]:
        return [v for _, v in await read_all(self.bootstrap, CAMPAIGN_DUE.dlq_name(self.prefix))]


async def read_all(bootstrap: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every record on ``topic`` up to its current end, as (key, JSON value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - first look at a new topic
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[str, dict[str, Any]]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                out += [(r.key.decode() if r.key else "", json.loads(r.value)) for r in batch]
        return out
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
async def harness(db_pool: asyncpg.Pool, kafka_bootstrap: str, imis: ServerThread) -> AsyncIterator[Harness]:
    prefix = new_prefix()
    await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE, RECIPIENTS], prefix=prefix)
    store = AudienceStore(db_pool, TEST_SECRETS)
    await store.check()
    async with (running_publisher(kafka_bootstrap, prefix) as (publisher, producer),
                httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as http):
        imis_settings = ImisSettings(http, imis.url, RetryPolicy(3, 0.01, 0.05))
        resolver = AudienceResolver(store, RecipientPublisher(producer, prefix=prefix), imis_settings, publish_batch=3)
        consumer = EventConsumer(kafka=KafkaAccess(kafka_bootstrap), group_id=f"{prefix}audience",
                                 handlers={CAMPAIGN_DUE: resolver.handle}, publisher=publisher, prefix=prefix,
                                 session_timeout_ms=6000, max_retry_s=5)
        async with running_consumer(consumer):
            yield Harness(db_pool, publisher, kafka_bootstrap, prefix, imis.url, resolver)
    await delete_topics_with_prefix(kafka_bootstrap, prefix)


@pytest.mark.parametrize("endpoint", ["iqa", "query"])
async def test_an_iqa_audience_becomes_a_snapshot_and_recipient_events(harness: Harness, endpoint: str) -> None:
    served_before = (await harness.imis_stats())["pages_served"].get(endpoint, 0)
    org_id, sender = await harness.org(query_endpoint=endpoint)
    async with harness.pool.acquire() as conn:
        await conn.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES "
                           "($1, '+14155550136', '', 'keyword'), ($1, '+13055550141', '+18885550199', 'keyword')",
                           org_id)
        await conn.execute("INSERT INTO bad_numbers (org_id, phone, error_code) VALUES ($1, '+16175550140', 30006)",
                           org_id)
    event = await harness.run(org_id)
    await harness.due(event)
    run = await harness.settled(event)
    await harness.fully_published(event)

    rows = await harness.snapshot(event)
    outcome = {r["member_id"]: (r["reason"], r["detail"]) for r in rows if r["status"] == "excluded"}
    assert outcome == {
        "23148": ("opted_out", "suppressed"), "23151": ("invalid_number", "phone_has_extension"),
        "23154": ("invalid_number", "phone_has_letters"), "23155": ("invalid_number", "phone_too_long"),
        "23157": ("duplicate_number", "household"), "23158": ("bad_number", "twilio_30006"),
    }
    queued = [r for r in rows if r["status"] == "queued"]
    assert [r["member_id"] for r in queued] == ["23145", "23146", "23147", "23149", "23150", "23156", "23159"]
    zoe = queued[0]
    assert (zoe["raw_phone"], zoe["e164"], zoe["encoding"], zoe["segments"]) == (
        "(415) 555-0134", "+14155550134", "UCS-2", 1)
    assert zoe["body"] == "Hi Zoë, renewals open today. Reply STOP to opt out."
    assert json.loads(zoe["merge_values"]) == {"first_name": "Zoë"}
    assert next(r for r in rows if r["member_id"] == "23157")["duplicate_of"] == "23156"
    assert {r["sender"] for r in queued} == {sender} and {r["sender"] for r in rows if r not in queued} == {None}
    assert (run["state"], run["targeted"], run["excluded"], run["planned_segments"]) == ("sending", 7, 6, 7)
    assert json.loads(run["exclusions"]) == {"bad_number": 1, "duplicate_number": 1, "invalid_number": 3,
                                             "opted_out": 1}

    events = await harness.recipients(event)
    assert {k for k, _ in events} == {sender}
    assert sorted((v["recipient_id"], v["to"], v["body"], v["segments"]) for _, v in events) == sorted(
        (str(r["recipient_id"]), r["e164"], r["body"], r["segments"]) for r in queued)
    household = await harness.pool.fetch(
        "SELECT member_id FROM member_phone_index WHERE org_id = $1 AND phone = '+14155550139' ORDER BY 1", org_id)
    assert [r["member_id"] for r in household] == ["23156", "23157"]
    assert (await harness.imis_stats())["pages_served"].get(endpoint, 0) > served_before  # the endpoint linked


async def test_a_redelivered_event_publishes_only_what_was_not_published(harness: Harness) -> None:
    org_id, _ = await harness.org()
    event = await harness.run(org_id)
    await harness.due(event)
    await harness.settled(event)
    await harness.fully_published(event)
    first = await harness.recipients(event)
    assert len(first) == 9

    await harness.due(event)  # the same event again: everything is published already
    await harness.sentinel(event)
    assert len(await harness.recipients(event)) == 9

    # A restart mid-publish: the last three recipients were never acknowledged, so the checkpoint stayed
    # before them. Redelivery sends exactly those, with the snapshot's recipient ids.
    lost = await harness.pool.fetch(
        "SELECT position, recipient_id FROM run_recipients WHERE run_id = $1 AND status = 'queued' "
        "ORDER BY position DESC LIMIT 4", event.run_id)
    await harness.pool.execute("UPDATE campaign_runs SET published_through = $2 WHERE id = $1",
                               event.run_id, lost[-1]["position"])
    await harness.due(event)
    await harness.fully_published(event)
    await eventually(lambda: _count(harness, event, 12))
    again = await harness.recipients(event)
    assert sorted(v["recipient_id"] for _, v in again[9:]) == sorted(str(r["recipient_id"]) for r in lost[:3])
    assert (await harness.pool.fetchval("SELECT targeted FROM campaign_runs WHERE id = $1", event.run_id)) == 9


async def _count(harness: Harness, event: CampaignDue, expected: int) -> bool:
    return len(await harness.recipients(event)) >= expected


async def test_two_consumers_resolving_one_run_write_one_snapshot(harness: Harness) -> None:
    # A rebalance can hand the same campaign-due to two consumers: both page iMIS, one snapshot is kept.
    org_id, _ = await harness.org()
    event = await harness.run(org_id)
    await asyncio.gather(harness.resolver.handle(event), harness.resolver.handle(event))
    rows = await harness.snapshot(event)
    assert len(rows) == 13 and (await harness.settled(event))["targeted"] == 9
    events = await harness.recipients(event)
    queued = {str(r["recipient_id"]) for r in rows if r["status"] == "queued"}
    assert {v["recipient_id"] for _, v in events} == queued  # perhaps some twice: the ledger dedupes those
    audits = await harness.pool.fetchval("SELECT count(*) FROM campaign_audit WHERE run_id = $1", event.run_id)
    assert audits == 1


async def test_a_run_sends_the_content_it_was_started_with_not_a_later_edit(harness: Harness) -> None:
    org_id, sender = await harness.org()
    event = await harness.run(org_id)
    # Staff edit the campaign after Send now, while its run is still pending: that is for the next run.
    other_sender = f"+1877{random.randrange(10**7):07d}"
    await harness.pool.execute("INSERT INTO senders (org_id, address) VALUES ($1, $2)", org_id, other_sender)
    await harness.pool.execute(
        "UPDATE campaigns SET body = 'Edited after Send now', segment_limit = 1, "
        "sender_id = (SELECT id FROM senders WHERE address = $2), audience = '{\"kind\": \"list\", "
        "\"list_id\": \"00000000-0000-0000-0000-000000000000\"}' WHERE id = $1", event.campaign_id, other_sender)
    await harness.due(event)
    run = await harness.settled(event)
    assert run["state"] == "sending" and run["targeted"] == 9  # the IQA and the limit of 20,000 it started with
    await harness.fully_published(event)
    events = await harness.recipients(event)
    assert len(events) == 9 and {k for k, _ in events} == {sender}
    assert {v["body"] for _, v in events} >= {"Hi Zoë, renewals open today. Reply STOP to opt out."}
    assert not [v for _, v in events if "Edited" in v["body"]]
    assert {r["body"] for r in await harness.snapshot(event) if r["status"] == "queued"} == {
        v["body"] for _, v in events}

    # The next run of the campaign takes the edited content.
    later = await harness.run(org_id, campaign_id=event.campaign_id)
    assert await harness.pool.fetchval("SELECT body FROM campaign_runs WHERE id = $1", later.run_id) == (
        "Edited after Send now")


async def test_a_run_that_sends_nothing_leaves_its_campaign_not_sent_with_the_reason(harness: Harness) -> None:
    org_id, _ = await harness.org()
    pending_org, _ = await harness.org(verification="pending")
    events = {
        "over_limit": await harness.run(org_id, segment_limit=8),
        "refused": await harness.run(pending_org),
        "completed": await harness.run(org_id, audience={"kind": "iqa", "query": "$/Textpulse/Members By Chapter",
                                                         "parameters": ["eq:Atlantis", ""]}),
        "failed": await harness.run(org_id, body="Hi {{frist_name}}"),
    }
    for event in events.values():
        await harness.due(event)
    for state, event in events.items():
        run = await harness.settled(event)
        assert run["state"] == state
        assert await harness.campaign_state(event) == "failed"  # "Not sent", no longer "Sending"
        audit = await harness.pool.fetchrow(
            "SELECT actor, from_state, to_state, detail FROM campaign_audit WHERE run_id = $1 AND action = 'run_ended'",
            event.run_id)
        assert (audit["actor"], audit["from_state"], audit["to_state"]) == ("audience", "sending", "failed")
        assert json.loads(audit["detail"]) == {"run_state": state, "reason": run["state_reason"]}

    # A recurring campaign with more occurrences goes back to scheduled instead.
    recurring = await harness.run(org_id, segment_limit=8)
    await harness.pool.execute("UPDATE campaigns SET next_occurrence_at = now() + interval '7 days' WHERE id = $1",
                               recurring.campaign_id)
    await harness.due(recurring)
    assert (await harness.settled(recurring))["state"] == "over_limit"
    assert await harness.campaign_state(recurring) == "scheduled"


async def test_a_run_over_its_segment_limit_publishes_nothing(harness: Harness) -> None:
    org_id, _ = await harness.org()
    event = await harness.run(org_id, segment_limit=8)
    await harness.due(event)
    run = await harness.settled(event)
    assert run["state"] == "over_limit" and run["finished_at"] is not None
    assert run["state_reason"] == ("segment_limit: 9 segments for 9 recipients exceed the campaign's segment "
                                   "limit of 8")
    assert len(await harness.snapshot(event)) == 13  # the snapshot still says who would have got it
    await harness.due(event)
    await harness.sentinel(event)
    assert await harness.recipients(event) == []

    account_org, _ = await harness.org(max_segments=5)
    capped = await harness.run(account_org)
    await harness.due(capped)
    assert (await harness.settled(capped))["state_reason"].endswith("exceed the account's max segments of 5")


async def test_an_unverified_sender_with_us_recipients_is_refused(harness: Harness) -> None:
    org_id, sender = await harness.org(verification="pending")
    event = await harness.run(org_id)
    await harness.due(event)
    run = await harness.settled(event)
    assert run["state"] == "refused"
    assert run["state_reason"].startswith(f"sender_unverified: {sender} is pending and cannot text US/Canada")
    await harness.sentinel(event)
    assert await harness.recipients(event) == []


async def test_imis_down_fails_the_run_with_nothing_written_or_published(harness: Harness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    org_id, _ = await harness.org(imis_url=closed)
    event = await harness.run(org_id)
    await harness.due(event)
    run = await harness.settled(event)
    assert run["state"] == "failed" and run["state_reason"].startswith("imis_unavailable: $/Textpulse/SMS Audience")
    assert await harness.snapshot(event) == []
    audit = await harness.pool.fetchval("SELECT action FROM campaign_audit WHERE run_id = $1", event.run_id)
    assert audit == "run_failed"
    await harness.due(event)  # a redelivery leaves a failed run alone
    await harness.sentinel(event)
    assert (await harness.pool.fetchval("SELECT state FROM campaign_runs WHERE id = $1", event.run_id)) == "failed"
    assert await harness.recipients(event) == []


async def test_zero_rows_is_a_completed_run_and_a_missing_mobile_column_a_failed_one(harness: Harness) -> None:
    org_id, _ = await harness.org()
    empty = await harness.run(org_id, audience={"kind": "iqa", "query": "$/Textpulse/Members By Chapter",
                                                "parameters": ["eq:Atlantis", ""]})
    await harness.due(empty)
    run = await harness.settled(empty)
    assert (run["state"], run["targeted"], run["excluded"]) == ("completed", 0, 0)

    await harness.pool.execute("INSERT INTO audience_column_maps (org_id, mobile_column) VALUES ($1, 'Cell')", org_id)
    wrong = await harness.run(org_id)
    await harness.due(wrong)
    run = await harness.settled(wrong)
    assert run["state"] == "failed" and run["state_reason"].startswith("iqa_column_missing:")
    assert "'Cell'" in run["state_reason"] and "mobile" in run["state_reason"]


async def test_settings_that_cannot_work_fail_the_run_before_imis_is_asked(harness: Harness) -> None:
    org_id, _ = await harness.org()
    tokens_before = await harness.imis_tokens()
    cases = [("", AUDIENCE, "body_empty:"), (BODY, {"kind": "sql", "query": "x"}, "audience_invalid:"),
             ("Hi {{frist_name}}", AUDIENCE, "merge_unknown_field:")]
    events = [await harness.run(org_id, body=body, audience=audience) for body, audience, _ in cases]
    # A tracked body whose link is not http(s): written past the API's check, it still fails the run.
    events.append(await harness.run(org_id, body="Files: ftp://files.example.org/agm", track_links=True))
    odd, _ = await harness.org()
    await harness.pool.execute("UPDATE organisations SET default_country_prefix = '+999' WHERE id = $1", odd)
    events.append(await harness.run(odd))
    other, _ = await harness.org()
    await harness.pool.execute("DELETE FROM senders WHERE org_id = $1", other)
    events.append(await harness.run(other))
    for event in events:
        await harness.due(event)
    reasons = [(await harness.settled(e))["state_reason"] for e in events]
    expected = [prefix for _, _, prefix in cases] + ["link_scheme_invalid:", "phone_prefix_invalid:",
                                                     "sender_missing:"]
    assert [r.split(" ", 1)[0] for r in reasons] == expected
    assert await harness.pool.fetchval("SELECT count(*) FROM run_recipients WHERE run_id = ANY($1::uuid[])",
                                       [e.run_id for e in events]) == 0
    assert await harness.imis_tokens() == tokens_before  # nobody signed in to iMIS for these runs


async def test_csv_and_list_audiences(harness: Harness) -> None:
    org_id, _ = await harness.org()
    stream = CsvStream(io.BytesIO(b"ID,Mobile,First Name\r\n1,(415) 555-0101,Ann\r\n2,415-555-0101,Bo\r\n3,,Cy\r\n"
                                  b"4,415\r\n"))
    async with harness.pool.acquire() as conn:  # stored as the API stores an upload
        upload_id = await upload_storage.store_csv(conn, org_id, "members.csv", "staff", stream)
        assert [(r.line, r.reason) for r in await uploads_db.rejections(conn, upload_id)] == [(5, "row_ragged")]
    from_csv = await harness.run(org_id, audience={"kind": "csv", "upload_id": str(upload_id)})
    await harness.due(from_csv)
    assert (await harness.settled(from_csv))["targeted"] == 1
    assert [(r["member_id"], r["reason"]) for r in await harness.snapshot(from_csv)] == [
        ("1", None), ("2", "duplicate_number"), ("3", "missing_mobile")]

    for state in ("refused", "receiving"):  # a file refused whole, and one still being stored (or abandoned)
        unusable = await harness.pool.fetchval("INSERT INTO csv_uploads (org_id, state) VALUES ($1, $2) RETURNING id",
                                               org_id, state)
        await harness.pool.execute("INSERT INTO csv_upload_rows (upload_id, line, mobile) VALUES ($1, 2, $2)",
                                   unusable, "(415) 555-0102")
        from_unusable = await harness.run(org_id, audience={"kind": "csv", "upload_id": str(unusable)})
        await harness.due(from_unusable)
        assert (await harness.settled(from_unusable))["state_reason"].startswith("csv_upload_unusable:")

    list_id = await harness.pool.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'Board') "
                                          "RETURNING id", org_id)
    await harness.pool.executemany(
        "INSERT INTO member_list_entries (list_id, member_id, mobile, merge_values) VALUES ($1, $2, $3, $4::jsonb)",
        [(list_id, "7", "+1 212 555 0142", '{"first_name": "Øystein", "chapter": "NYC"}'),
         (list_id, "8", "2125550143", '{"first_name": "Li"}')])
    from_list = await harness.run(org_id, audience={"kind": "list", "list_id": str(list_id)},
                                  body="{{first_name}}: board meeting, {{chapter|your chapter}}.")
    await harness.due(from_list)
    await harness.settled(from_list)
    await harness.fully_published(from_list)
    bodies = sorted(v["body"] for _, v in await harness.recipients(from_list))
    assert bodies == ["Li: board meeting, your chapter.", "Øystein: board meeting, NYC."]


async def test_members_addresses_reach_the_snapshot_for_quiet_hours(harness: Harness) -> None:
    org_id, _ = await harness.org()
    from_iqa = await harness.run(org_id)
    await harness.due(from_iqa)
    await harness.settled(from_iqa)
    states = {r["member_id"]: r["address_state"] for r in await harness.snapshot(from_iqa) if r["status"] == "queued"}
    # Zoë's and Ángel's Florida, José's California, Jun's Kansas; María's address is in British Columbia (no
    # US state), the others have none.
    assert states == {"23145": "FL", "23146": "CA", "23147": None, "23148": None, "23149": None, "23150": None,
                      "23156": "KS", "23158": None, "23159": "FL"}
    assert harness.resolver.last.address_states_ignored == 1  # "BC"

    stream = CsvStream(io.BytesIO(b"ID,Mobile,State\r\n1,(415) 555-0111,ok\r\n2,(415) 555-0112,Calif.\r\n"
                                  b"3,(415) 555-0113,\r\n4,(415) 555-0114,Florida\r\n"))
    async with harness.pool.acquire() as conn:
        upload_id = await upload_storage.store_csv(conn, org_id, "moved.csv", "staff", stream)
    from_csv = await harness.run(org_id, audience={"kind": "csv", "upload_id": str(upload_id)})
    await harness.due(from_csv)
    assert (await harness.settled(from_csv))["targeted"] == 4  # a bad state never fails a member or the run
    assert [(r["member_id"], r["address_state"]) for r in await harness.snapshot(from_csv)] == [
        ("1", "OK"), ("2", None), ("3", None), ("4", "FL")]
    assert harness.resolver.last.address_states_ignored == 1  # "Calif."

    list_id = await harness.pool.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'Movers') "
                                          "RETURNING id", org_id)
    await harness.pool.executemany(
        "INSERT INTO member_list_entries (list_id, member_id, mobile, merge_values) VALUES ($1, $2, $3, $4::jsonb)",
        [(list_id, "7", "+1 212 555 0144", '{"state": "TX"}'), (list_id, "8", "2125550145", '{}'),
         (list_id, "9", "2125550146", '{"state": "WA", "country": "AU"}')])
    from_list = await harness.run(org_id, audience={"kind": "list", "list_id": str(list_id)})
    await harness.due(from_list)
    await harness.settled(from_list)
    assert [(r["member_id"], r["address_state"]) for r in await harness.snapshot(from_list)] == [
        ("7", "TX"), ("8", None), ("9", None)]  # Western Australia is not Washington


async def test_poisoned_events_go_to_the_dead_letter_queue(harness: Harness) -> None:
    topic = CAMPAIGN_DUE.full_name(harness.prefix)
    await harness.publisher.publish_raw(topic, b"not json", key=b"poison")
    org_id, _ = await harness.org()
    known = await harness.run(org_id)
    unknown = CampaignDue(org_id=org_id, campaign_id=known.campaign_id, run_id=uuid.uuid4(),
                          scheduled_for=datetime.now(UTC))
    await harness.due(unknown)
    bad_body = await harness.run(org_id, body="Hi {{frist_name}}")
    await harness.due(bad_body)
    await harness.due(known)
    assert (await harness.settled(known))["state"] == "sending"  # the consumer went on

    letters = await eventually(lambda: _letters(harness, 2), timeout=20)
    assert {(d["error_code"], d["value"][:8]) for d in letters} >= {("event_not_json", "not json")}
    assert any(d["error_code"] == "run_unknown" and str(unknown.run_id) in d["value"] for d in letters)
    run = await harness.settled(bad_body)  # a body that cannot be rendered fails its run, not the consumer
    assert run["state"] == "failed" and run["state_reason"].startswith("merge_unknown_field:")


async def test_a_campaign_due_that_the_database_does_not_vouch_for_resolves_nothing(harness: Harness) -> None:
    org_id, _ = await harness.org()
    early = await harness.run(org_id)  # a forged event for a run scheduled for tomorrow
    await harness.pool.execute("UPDATE campaign_runs SET occurrence_at = now() + interval '1 day' WHERE id = $1",
                               early.run_id)
    other_org, _ = await harness.org()
    foreign = (await harness.run(other_org)).model_copy(update={"org_id": org_id})
    await harness.due(early)
    await harness.due(foreign)

    assert await eventually(lambda: _code_of(harness, early.run_id), timeout=20) == "run_not_due"
    assert await eventually(lambda: _code_of(harness, foreign.run_id), timeout=20) == "run_mismatch"
    for forged in (early, foreign):
        row = await harness.pool.fetchrow("SELECT state, resolved_at FROM campaign_runs WHERE id = $1", forged.run_id)
        assert (row["state"], row["resolved_at"]) == ("pending", None)
        assert await harness.snapshot(forged) == []


async def _code_of(harness: Harness, run_id: uuid.UUID) -> str | None:
    for letter in await harness.dead_letters():
        if letter["value"].startswith("{") and json.loads(letter["value"])["run_id"] == str(run_id):
            return letter["error_code"]
    return None


async def _letters(harness: Harness, at_least: int) -> list[dict[str, Any]] | None:
    letters = await harness.dead_letters()
    return letters if len(letters) >= at_least else None


async def test_an_erased_member_who_said_stop_is_excluded_when_imis_brings_the_number_back(harness: Harness) -> None:
    org_id, _ = await harness.org()
    async with harness.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO suppressions (org_id, phone, scope, source) "
                           "VALUES ($1, '+14155550136', '', 'keyword')", org_id)
        erased = await erasure.erase_member(conn, TEST_SECRETS, org_id, "+1", erased_by="admin@example.org",
                                            phone="+14155550136")
    assert erased.counts["suppressions"] == 1
    assert await harness.pool.fetchval("SELECT count(*) FROM suppressions WHERE org_id = $1", org_id) == 0

    event = await harness.run(org_id)
    await harness.due(event)
    await harness.settled(event)

    member = next(r for r in await harness.snapshot(event) if r["member_id"] == "23148")
    assert (member["status"], member["reason"], member["detail"]) == ("excluded", "opted_out", "suppressed")


@pytest.mark.parametrize("endpoint", ["iqa", "query"])
async def test_a_nul_character_from_imis_is_removed_and_the_member_kept(harness: Harness, endpoint: str) -> None:
    # PostgreSQL text cannot hold U+0000: once it failed the stage's copy and left the run resolving.
    zoe = SMALL[0]
    members = [zoe._replace(first_name="Zo\x00ë", mobile="(415) 555-\x000134"), *SMALL[1:]]
    with ServerThread(create_app(ImisConfig(dataset="small"), members=members)) as site:
        org_id, _ = await harness.org(imis_url=site.url, query_endpoint=endpoint)
        event = await harness.run(org_id)
        await harness.due(event)
        run = await harness.settled(event)
    assert run["state"] == "sending", run["state_reason"]
    row = next(r for r in await harness.snapshot(event) if r["member_id"] == zoe.id)
    assert (row["status"], row["raw_phone"], row["e164"]) == ("queued", "(415) 555-0134", "+14155550134")
    assert row["body"] == "Hi Zoë, renewals open today. Reply STOP to opt out."
    assert json.loads(row["merge_values"]) == {"first_name": "Zoë"}
