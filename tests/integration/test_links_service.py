"""The links service on real PostgreSQL and Kafka: a short link redirects and its click is stored once;
unknown and expired codes get a plain page; a tracked run's codes are the ones its snapshot's bodies carry."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from harness import factories
from harness.kafka import records_to_end, running_publisher
from libs.common import audience_rules as rules
from libs.common.events import LinkClicked
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.links import Shortener, new_code
from libs.common.merge import compile_template
from libs.common.settings import load_settings
from libs.common.topics import LINK_CLICKS
from services.audience.stage_db import Stage
from services.links.db import LinkStore
from services.links.main import build
from services.links.redirects import Redirector, ShortLinks
from tests.conftest import eventually

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
IMESSAGE_PREVIEW = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"


@pytest.fixture
async def links(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(KafkaAccess(kafka_bootstrap), [LINK_CLICKS], prefix=topic_prefix)
    config = load_settings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
                           topic_prefix=topic_prefix)
    async with build(config) as service:
        tasks = [asyncio.create_task(worker()) for worker in service.workers]
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                                         base_url="http://go.textpulse.test") as client:
                yield client
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert not [r for r in results if isinstance(r, Exception)], results


async def make_link(pool: asyncpg.Pool, url: str = "https://example.org/renew?id=7", *,
                    expires_at: datetime | None = None) -> tuple[str, uuid.UUID, uuid.UUID]:
    org = await factories.make_org(pool)
    campaign = await factories.make_campaign(pool, org, body=f"Renew: {url}", track_links=True)
    run = await factories.make_run(pool, org, campaign)
    code, recipient = new_code(), uuid.uuid4()
    await pool.execute("INSERT INTO short_links (code, org_id, run_id, recipient_id, url, expires_at)"
                       " VALUES ($1, $2, $3, $4, $5, $6)", code, org, run, recipient, url,
                       expires_at or datetime.now(UTC) + timedelta(days=30))
    return code, run, recipient


async def clicks(pool: asyncpg.Pool, run: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM link_clicks WHERE run_id = $1 ORDER BY clicked_at", run)


async def test_a_short_link_redirects_and_each_click_is_stored_once_people_apart_from_bots(
    links: httpx.AsyncClient, db_pool: asyncpg.Pool,
) -> None:
    code, run, recipient = await make_link(db_pool)
    preview = await links.get(f"/{code}", headers={"User-Agent": IMESSAGE_PREVIEW})
    person = await links.get(f"/{code}", headers={"User-Agent": IPHONE})
    head = await links.head(f"/{code}", headers={"User-Agent": IPHONE})  # a HEAD is a preview fetch
    assert (await links.get("/healthz")).json()["service"] == "links"
    for response in (preview, person, head):
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.org/renew?id=7"
        assert response.headers["cache-control"] == "no-store"
    rows = await eventually(lambda: _at_least(db_pool, run, 3))
    await asyncio.sleep(0.5)  # a duplicate would arrive here
    rows = await clicks(db_pool, run)
    assert [(r["agent_class"], r["is_bot"], r["recipient_id"], r["code"]) for r in rows] == [
        ("preview_bot", True, recipient, code), ("mobile", False, recipient, code),
        ("preview_bot", True, recipient, code)]
    assert all(r["client_network"] == "127.0.0.0/24" for r in rows)
    funnel = await db_pool.fetchrow(
        "SELECT count(*) FILTER (WHERE NOT is_bot) AS people, count(DISTINCT recipient_id) FILTER (WHERE NOT is_bot)"
        " AS unique_people, count(*) FILTER (WHERE is_bot) AS bots FROM link_clicks WHERE run_id = $1", run)
    assert dict(funnel) == {"people": 1, "unique_people": 1, "bots": 2}


async def _at_least(pool: asyncpg.Pool, run: uuid.UUID, n: int) -> list[asyncpg.Record] | None:
    rows = await clicks(pool, run)
    return rows if len(rows) >= n else None


@pytest.mark.parametrize("path", ["/AAAAAAAAAAAA", "/short", "/%3Cscript%3E", "/" + "x" * 300, "/", "/a/b"])
async def test_an_unknown_code_gets_a_plain_page(links: httpx.AsyncClient, path: str) -> None:
    response = await links.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Link not found" in response.text and "Traceback" not in response.text


async def test_an_expired_code_gets_a_plain_page_and_no_click(links: httpx.AsyncClient, db_pool: asyncpg.Pool) -> None:
    code, run, _ = await make_link(db_pool, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await links.get(f"/{code}", headers={"User-Agent": IPHONE})
    assert response.status_code == 410 and "Link expired" in response.text
    await asyncio.sleep(0.5)
    assert await clicks(db_pool, run) == []


async def test_a_click_delivered_twice_or_also_written_directly_is_stored_once(
    links: httpx.AsyncClient, db_pool: asyncpg.Pool, kafka_bootstrap: str, topic_prefix: str,
) -> None:
    code, run, recipient = await make_link(db_pool)
    click = LinkClicked(org_id=await db_pool.fetchval("SELECT org_id FROM campaign_runs WHERE id = $1", run),
                        run_id=run, recipient_id=recipient, code=code, agent_class="desktop")
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        await publisher.publish(LINK_CLICKS, click, key=str(run))
        await publisher.publish(LINK_CLICKS, click, key=str(run))
    await LinkStore(db_pool).record_click(click)
    await eventually(lambda: _at_least(db_pool, run, 1))
    await asyncio.sleep(0.5)
    assert [r["click_id"] for r in await clicks(db_pool, run)] == [click.event_id]


class _KafkaAway:
    """A producer that refuses every click at once, or takes it and then never gets it acknowledged."""

    def __init__(self, *, later: bool) -> None:
        self._later = later

    async def enqueue(self, *args: object, **kwargs: object) -> asyncio.Future[object]:
        if not self._later:
            raise ConnectionError("broker unreachable")
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, acked.set_exception, ConnectionError("request timed out"))
        return acked


@pytest.mark.parametrize("later", [False, True], ids=["refused", "unacknowledged"])
async def test_when_kafka_is_away_the_click_goes_to_postgresql_and_the_member_is_redirected(
    db_pool: asyncpg.Pool, later: bool,
) -> None:
    from starlette.applications import Starlette

    code, run, recipient = await make_link(db_pool, "https://example.org/agm")
    redirector = Redirector(LinkStore(db_pool), _KafkaAway(later=later))  # type: ignore[arg-type]
    app = ShortLinks(Starlette(), redirector, frozenset())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://go.test") as client:
        response = await client.get(f"/{code}", headers={"User-Agent": IPHONE})
    assert response.status_code == 302 and response.headers["location"] == "https://example.org/agm"
    await redirector.drain()
    assert [(r["recipient_id"], r["agent_class"]) for r in await clicks(db_pool, run)] == [(recipient, "mobile")]


async def test_a_tracked_snapshot_stores_each_queued_recipients_codes_with_its_body(db_pool: asyncpg.Pool) -> None:
    org = await factories.make_org(db_pool)
    campaign = await factories.make_campaign(db_pool, org, body="x", track_links=True)
    run = await factories.make_run(db_pool, org, campaign)
    assert await db_pool.fetchval("SELECT track_links FROM campaign_runs WHERE id = $1", run) is True
    template = compile_template("Hi {{first_name}}: https://example.org/agm?m={{member_id}} and https://example.org/x")
    members = [rules.AudienceMember(str(100 + i), f"+1202555{i:04d}", {"first_name": "Ann", "member_id": str(100 + i)})
               for i in range(5)]
    members.append(rules.AudienceMember("100", "+12025559999", {"first_name": "Ann", "member_id": "100"}))  # repeat
    rows = rules.classify_each(members, template, start=0, default_country_prefix="+1", suppressed=(), bad_numbers=(),
                               shortener=Shortener("https://go.example.org"))
    async with db_pool.acquire() as conn:
        stage = Stage(conn)
        await stage.open()
        try:
            await stage.add(rows)
            await stage.settle()
            async with conn.transaction():
                await stage.write_snapshot(run, org, "+18885550100", link_days=30)
        finally:
            await stage.close()
    sent = await db_pool.fetch("SELECT recipient_id, member_id, body FROM run_recipients"
                               " WHERE run_id = $1 AND status = 'queued' ORDER BY position", run)
    stored = await db_pool.fetch("SELECT code, recipient_id, url, expires_at FROM short_links WHERE run_id = $1", run)
    assert len(sent) == 5 and len(stored) == 10  # the repeated member gets no links
    by_recipient: dict[uuid.UUID, dict[str, str]] = {}
    for link in stored:
        by_recipient.setdefault(link["recipient_id"], {})[link["code"]] = link["url"]
        assert link["expires_at"] > datetime.now(UTC) + timedelta(days=29)
    for row in sent:
        shown = re.fullmatch(r"Hi Ann: https://go\.example\.org/(\S{12}) and https://go\.example\.org/(\S{12})",
                             row["body"])
        assert shown is not None, row["body"]
        codes = by_recipient[row["recipient_id"]]
        assert [codes[code] for code in shown.groups()] == [f"https://example.org/agm?m={row['member_id']}",
                                                           "https://example.org/x"]


async def test_a_record_that_is_not_a_click_goes_to_the_dead_letter_queue_and_the_rest_are_stored(
    links: httpx.AsyncClient, db_pool: asyncpg.Pool, kafka_bootstrap: str, topic_prefix: str,
) -> None:
    code, run, recipient = await make_link(db_pool)
    org = await db_pool.fetchval("SELECT org_id FROM campaign_runs WHERE id = $1", run)
    click = LinkClicked(org_id=org, run_id=run, recipient_id=recipient, code=code, agent_class="mobile")
    topic = LINK_CLICKS.full_name(topic_prefix)
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        await publisher.publish_raw(topic, b"not json", key=str(run).encode())
        await publisher.publish_raw(topic, b'{"schema_version": 1, "code": "short"}', key=str(run).encode())
        await publisher.publish(LINK_CLICKS, click, key=str(run))

    async def letters() -> list[dict[str, object]] | None:
        dlq = {LINK_CLICKS.dlq_name(topic_prefix): 1}
        found = [json.loads(r.value) for r in await records_to_end(kafka_bootstrap, dlq)]
        return found if len(found) >= 2 else None

    dead = await eventually(letters, timeout=30)
    assert sorted(str(d["error_code"]) for d in dead) == ["event_not_json", "schema_invalid"]
    assert [r["click_id"] for r in await eventually(lambda: _at_least(db_pool, run, 1))] == [click.event_id]


class _PostgresAway:
    async def find_many(self, codes: list[str]) -> None:
        raise ConnectionRefusedError("connection refused")


async def test_a_lookup_while_postgresql_is_away_gets_a_plain_page_to_try_again() -> None:
    from starlette.applications import Starlette

    app = ShortLinks(Starlette(), Redirector(_PostgresAway(), _KafkaAway(later=False)),  # type: ignore[arg-type]
                     frozenset())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://go.test") as client:
        response = await client.get(f"/{new_code()}")
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert "Try again" in response.text and "Traceback" not in response.text


class _CountedLookups(LinkStore):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.lookups: list[int] = []

    async def find_many(self, codes: list[str]) -> list[Any]:
        self.lookups.append(len(codes))
        return await super().find_many(codes)


async def test_a_campaigns_first_clicks_at_once_are_looked_up_together_each_to_its_own_url(
    db_pool: asyncpg.Pool, kafka_bootstrap: str, topic_prefix: str,
) -> None:
    from starlette.applications import Starlette

    made = [await make_link(db_pool, f"https://example.org/renew?m={n}") for n in range(30)]
    store = _CountedLookups(db_pool)
    await ensure_topics(KafkaAccess(kafka_bootstrap), [LINK_CLICKS], prefix=topic_prefix)
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, _):
        redirector = Redirector(store, publisher)
        app = ShortLinks(Starlette(), redirector, frozenset())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://go.test") as client:
            unknown, *answers = await asyncio.gather(client.get(f"/{new_code()}"),
                                                     *(client.get(f"/{code}") for code, _, _ in made))
            again = await client.get(f"/{made[0][0]}")
        await redirector.drain()

    assert unknown.status_code == 404
    assert [(a.status_code, a.headers["location"]) for a in answers] == [
        (302, f"https://example.org/renew?m={n}") for n in range(30)]
    assert sum(store.lookups) == 31 and len(store.lookups) < 31  # asked together, read in fewer statements
    assert again.status_code == 302 and sum(store.lookups) == 31  # known now: answered from the cache
