"""A real dispatcher's /metrics, scraped while it sends a run through the Twilio stand-in, agrees with the
send ledger: texts by outcome and error code, segments per sender, Twilio calls, claims, dead letters, lag."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.dispatch import SeededRun, TwilioStandin, dispatcher_env, publish_recipients, seed_run, start_dispatcher
from harness.kafka import running_publisher
from harness.processes import Process, wait_http
from libs.common.topics import ALL_TOPICS, RECIPIENTS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDERS = ["+18885550120", "+18885550121"]
RECIPIENTS_IN_RUN = 40
# Twilio's magic numbers, which the stand-in refuses as Twilio does: not a valid number; replied STOP.
INVALID_NUMBER, UNSUBSCRIBED = "+15005550001", "+15005550004"
RUN_DEADLINE_S = 300  # a deadline for a loaded 2-core machine, not a speed target
pytestmark = pytest.mark.timeout(RUN_DEADLINE_S + 180)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    response.raise_for_status()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in samples.items() if n == name and wanted <= series)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path, SENDERS)
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture
async def dispatcher(tmp_path: Path, standin: TwilioStandin, database_url: str, kafka: KafkaCluster,
                     topic_prefix: str) -> AsyncIterator[Process]:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    process = start_dispatcher("dispatcher-metrics",
                               dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin), tmp_path)
    yield process
    process.stop()


async def seed_with_refusals(pool: asyncpg.Pool, standin: TwilioStandin) -> SeededRun:
    """A run whose first recipient Twilio refuses as invalid (21211) and second as unsubscribed (21610)."""
    run = await seed_run(pool, standin, SENDERS, RECIPIENTS_IN_RUN, rng=random.Random(23))
    async with pool.acquire() as conn:
        for index, number in enumerate((INVALID_NUMBER, UNSUBSCRIBED)):
            recipient = run.recipients[index]
            run.recipients[index] = recipient.model_copy(update={"to": number})
            await conn.execute("UPDATE run_recipients SET e164 = $1 WHERE run_id = $2 AND recipient_id = $3",
                               number, run.run_id, recipient.recipient_id)
    return run


async def ledger(pool: asyncpg.Pool, run: SeededRun) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT sender, state, error_code, segments FROM send_ledger WHERE run_id = $1",
                                run.run_id)


async def run_finished(pool: asyncpg.Pool, run: SeededRun) -> list[asyncpg.Record] | None:
    rows = await ledger(pool, run)
    return rows if len(rows) == RECIPIENTS_IN_RUN and all(r["state"] != "claimed" for r in rows) else None


async def test_metrics_scraped_during_a_send_agree_with_the_ledger(
    dispatcher: Process, standin: TwilioStandin, db_pool: asyncpg.Pool, kafka: KafkaCluster, topic_prefix: str,
) -> None:
    run = await seed_with_refusals(db_pool, standin)
    forged = run.recipients[2].model_copy(update={"recipient_id": uuid.uuid4()})  # not in the run's snapshot
    await wait_http(f"{dispatcher.url}/healthz")
    async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
        await publish_recipients(publisher, run)
        await publisher.publish(RECIPIENTS, forged, key=forged.sender)

    async with httpx.AsyncClient(base_url=dispatcher.url, timeout=60) as client:
        # While it sends: a counted text is always in the ledger already (the row is written first).
        await eventually(lambda: _sent_at_least(db_pool, run, 5), timeout=RUN_DEADLINE_S, interval=0.2)
        during = await scrape(client)
        sent_after = sum(r["state"] == "sent" for r in await ledger(db_pool, run))
        counted = sample(during, "textpulse_texts_total", outcome="sent", error_code="none")
        assert 1 <= counted <= sent_after

        rows = await eventually(lambda: run_finished(db_pool, run), timeout=RUN_DEADLINE_S, interval=0.5)
        # The lag and the lanes are sampled with each commit: every record is committed once the run is done.
        after = await eventually(lambda: _settled(client, topic_prefix), timeout=120, interval=0.5)

    by_outcome: dict[tuple[str, str], int] = {}
    for row in rows:
        code = "none" if row["error_code"] is None else str(row["error_code"])
        by_outcome[(row["state"], code)] = by_outcome.get((row["state"], code), 0) + 1
    assert by_outcome[("failed", "21211")] == 1 and by_outcome[("suppressed", "21610")] == 1
    counted_outcomes = {(dict(series)["outcome"], dict(series)["error_code"]): int(v)
                        for (name, series), v in after.items() if name == "textpulse_texts_total" and v}
    assert counted_outcomes == by_outcome

    for sender in SENDERS:
        billed = sum(r["segments"] for r in rows if r["sender"] == sender and r["state"] == "sent")
        assert billed > 0
        assert sample(after, "textpulse_segments_total", sender=sender) == billed
    sent = by_outcome[("sent", "none")]
    assert sample(after, "textpulse_twilio_call_seconds_count", outcome="accepted") == sent  # no retry was needed
    assert sample(after, "textpulse_twilio_call_seconds_count", outcome="bad_number") == 1
    assert sample(after, "textpulse_twilio_call_seconds_count", outcome="suppress") == 1
    assert sample(after, "textpulse_ledger_claim_seconds_count") >= RECIPIENTS_IN_RUN
    recipients_topic = RECIPIENTS.full_name(topic_prefix)
    assert total(after, "textpulse_dlq_records_total", topic=recipients_topic, code="not_in_snapshot") == 1
    assert not any("+1415555" in series_label for (_, series) in after for _, series_label in series)


async def _sent_at_least(pool: asyncpg.Pool, run: SeededRun, count: int) -> bool:
    return sum(r["state"] == "sent" for r in await ledger(pool, run)) >= count


async def _settled(client: httpx.AsyncClient, prefix: str) -> Samples | None:
    samples = await scrape(client)
    topic = RECIPIENTS.full_name(prefix)
    lags = [v for (name, series), v in samples.items()
            if name == "textpulse_consumer_lag" and ("topic", topic) in series]
    idle = sample(samples, "textpulse_dispatcher_lane_queue_depth") == 0
    return samples if lags and sum(lags) == 0 and idle else None
