"""Recipient events are pointers: a producer with no credentials cannot make the dispatcher text anyone.

A raw aiokafka producer (the broker asks for no credentials) writes recipient records that the audience
service never published: for the organisation's own run (a number outside the snapshot, a changed body,
another sender) and naming another organisation or its run. A real dispatcher process reads them beside
the run's genuine recipients. Only the genuine ones reach the Twilio stand-in; each forged record is in
``recipients.dlq`` with its code, has no ledger row, and the other organisation's run is as it was.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from harness import factories
from harness.dispatch import (
    TwilioStandin,
    dispatcher_env,
    publish_recipients,
    seed_run,
    start_dispatcher,
    store_snapshot,
)
from harness.kafka import read_topic, running_publisher
from harness.processes import wait_http
from libs.common.events import Recipient
from libs.common.kafka_security import client_kwargs
from libs.common.topics import ALL_TOPICS, RECIPIENTS
from tests.conftest import eventually
from tests.kafka_cluster import KafkaCluster

SENDER, OTHER_SENDER, VICTIM_SENDER = "+18885550140", "+18885550141", "+18885550142"


async def seed_victim(pool: asyncpg.Pool) -> Recipient:
    """Another organisation, with a Twilio account of its own and a run being sent; one of its recipients."""
    org_id = await factories.make_org(pool, slug=factories.new_slug("victim"), name="Victim")
    await factories.make_sms_account(pool, org_id, auth_token="victim-token", webhook_base_url="http://127.0.0.1:9")
    await factories.make_sender(pool, org_id, VICTIM_SENDER)
    campaign_id = await factories.make_campaign(pool, org_id, name="Victim", body="x", state="sending")
    run_id = await factories.make_run(pool, org_id, campaign_id, state="sending", targeted=1)
    member = Recipient(org_id=org_id, campaign_id=campaign_id, run_id=run_id, recipient_id=uuid.uuid4(),
                       sender=VICTIM_SENDER, to="+14155559001", body="Victim's text", segments=1)
    await store_snapshot(pool, [member])
    return member


def forgeries(own: list[Recipient], victim: Recipient) -> list[tuple[Recipient, str]]:
    """Records no audience service published, each with the code the dispatcher must dead-letter it with."""
    genuine = own[0]
    return [
        (genuine.model_copy(update={"recipient_id": uuid.uuid4(), "to": "+14155558001"}), "not_in_snapshot"),
        (genuine.model_copy(update={"to": "+14155558002"}), "content_mismatch"),
        (own[1].model_copy(update={"body": "Your account is locked: call +1 415 555 0000"}), "content_mismatch"),
        (own[2].model_copy(update={"sender": OTHER_SENDER}), "sender_mismatch"),
        (own[3].model_copy(update={"campaign_id": uuid.uuid4()}), "run_mismatch"),
        (own[4].model_copy(update={"run_id": uuid.uuid4()}), "run_unknown"),
        # Naming the other organisation: its own run with a number outside its snapshot, its run under
        # this organisation's name, and this organisation's run under its name.
        (victim.model_copy(update={"recipient_id": uuid.uuid4(), "to": "+14155558003"}), "not_in_snapshot"),
        (victim.model_copy(update={"org_id": genuine.org_id, "sender": SENDER}), "org_mismatch"),
        (own[5].model_copy(update={"org_id": victim.org_id}), "org_mismatch"),
    ]


async def test_forged_recipient_records_are_dead_lettered_and_nothing_of_them_is_sent(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    standin = TwilioStandin(tmp_path, [SENDER, OTHER_SENDER, VICTIM_SENDER])
    dispatcher = None
    try:
        await wait_http(f"{standin.url}/healthz")
        run = await seed_run(db_pool, standin, [SENDER], 8, rng=random.Random(20))
        await db_pool.execute("INSERT INTO senders (org_id, address) VALUES ($1, $2)", run.org_id, OTHER_SENDER)
        victim = await seed_victim(db_pool)
        victim_before = await _run_row(db_pool, victim.run_id)
        forged = forgeries(run.recipients, victim)

        # On the shared broker: no credentials of any kind. On a SASL_SSL one: a user that may write recipients.
        producer = AIOKafkaProducer(**client_kwargs(kafka.user("audience")))
        await producer.start()
        try:
            for event, _ in forged:  # ahead of the genuine records, on the same partitions
                await producer.send_and_wait(RECIPIENTS.full_name(topic_prefix), value=event.model_dump_json().encode(),
                                             key=event.sender.encode())
        finally:
            await producer.stop()
        async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)

        env = dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin)
        dispatcher = start_dispatcher("dispatcher-0", env, tmp_path)
        done = await eventually(lambda: _completed(db_pool, run.run_id), timeout=90, interval=0.5)
        letters = await read_topic(kafka.admin, RECIPIENTS.dlq_name(topic_prefix), expect=len(forged), timeout=60)

        texted = await standin.messages_to()
        assert {number: [m["body"] for m in messages] for number, messages in texted.items()} == \
            {r.to: [r.body] for r in run.recipients}  # the snapshot's numbers and bodies, once each, nothing else
        assert done["sent"] == 8 and done["failed"] == 0
        codes = {json.loads(letter["value"])["event_id"]: letter["error_code"] for letter in letters}
        assert codes == {str(event.event_id): code for event, code in forged}
        assert await _run_row(db_pool, victim.run_id) == victim_before  # state, reason and counts untouched
        ledger = await db_pool.fetch("SELECT run_id, recipient_id, to_number FROM send_ledger WHERE org_id = ANY($1)",
                                     [run.org_id, victim.org_id])
        assert {(r["run_id"], r["recipient_id"], r["to_number"]) for r in ledger} == \
            {(r.run_id, r.recipient_id, r.to) for r in run.recipients}
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        standin.process.stop()


async def _run_row(pool: asyncpg.Pool, run_id: uuid.UUID) -> dict:
    row = await pool.fetchrow("SELECT state, state_reason, sent, failed, dropped, segments, targeted "
                              "FROM campaign_runs WHERE id = $1", run_id)
    return dict(row)


async def _completed(pool: asyncpg.Pool, run_id: uuid.UUID) -> dict | None:
    row = await _run_row(pool, run_id)
    return row if row["state"] == "completed" else None


async def test_a_sender_the_organisation_does_not_have_is_refused_not_taken_for_verified(
    tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster, topic_prefix: str
) -> None:
    await kafka.prepare(ALL_TOPICS, prefix=topic_prefix)
    standin = TwilioStandin(tmp_path, [SENDER])
    dispatcher = None
    try:
        await wait_http(f"{standin.url}/healthz")
        run = await seed_run(db_pool, standin, [SENDER], 3, rng=random.Random(21))
        await db_pool.execute("DELETE FROM senders WHERE org_id = $1", run.org_id)  # released since the snapshot
        async with running_publisher(kafka.user("audience"), topic_prefix) as (publisher, _):
            await publish_recipients(publisher, run)
        env = dispatcher_env(database_url, kafka.user("dispatcher"), topic_prefix, standin)
        dispatcher = start_dispatcher("dispatcher-0", env, tmp_path)
        letters = await read_topic(kafka.admin, RECIPIENTS.dlq_name(topic_prefix), expect=3, timeout=60)
        assert sorted(letter["error_code"] for letter in letters) == ["sender_unknown"] * 3
        assert await standin.messages_to() == {}
        assert await db_pool.fetchval("SELECT count(*) FROM send_ledger WHERE run_id = $1", run.run_id) == 0
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        standin.process.stop()
