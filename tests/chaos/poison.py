"""Poisoned events the suite puts on the topics, and what the dead-letter queues hold at the end.

Each poison is remembered by where it landed (topic, partition, offset) and the error code its consumer
must dead-letter it with. Dead-lettering is at least once (a consumer killed between writing the letter
and committing the offset writes it again), so letters are compared by the record they name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from harness.kafka import records_to_end
from libs.common.events import DeadLetter
from libs.common.topics import (
    ALL_TOPICS,
    CAMPAIGN_DUE,
    CONSENT,
    DLQ_PARTITIONS,
    MESSAGE_STATUS,
    RECIPIENTS,
    SEND_RESULTS,
    TopicSpec,
)


@dataclass(frozen=True)
class Poison:
    topic: str
    partition: int
    offset: int
    error_code: str
    what: str


@dataclass(frozen=True)
class _Recipe:
    spec: TopicSpec
    key: str
    value: bytes
    error_code: str
    what: str


def _json(**fields: object) -> bytes:
    return json.dumps(fields, default=str).encode()


def campaign_due_recipes(org_id: uuid.UUID) -> list[_Recipe]:
    now = datetime.now(UTC)
    due = {"org_id": org_id, "campaign_id": uuid.uuid4(), "run_id": uuid.uuid4(), "scheduled_for": now}
    return [
        _Recipe(CAMPAIGN_DUE, "poison-1", b'{"org_id": "truncated', "event_not_json", "truncated JSON"),
        _Recipe(CAMPAIGN_DUE, "poison-2", _json(schema_version=2, **due), "schema_version_unsupported",
                "a schema version nobody speaks"),
        _Recipe(CAMPAIGN_DUE, "poison-3", _json(schema_version=1, **due), "run_unknown", "a run that does not exist"),
    ]


def dispatch_recipes(org_id: uuid.UUID, sender: str) -> list[_Recipe]:
    """Poison for the dispatcher (recipients) and the usage service (send-results, statuses, consent)."""
    stranger = "+18885550199"  # a sender of no organisation with a Twilio account
    recipient = {"schema_version": 1, "org_id": uuid.uuid4(), "campaign_id": uuid.uuid4(), "run_id": uuid.uuid4(),
                 "recipient_id": uuid.uuid4(), "sender": stranger, "to": "+14155550100", "body": "Hi", "segments": 1}
    sid = "SM" + "0" * 32
    return [
        _Recipe(RECIPIENTS, sender, b"\xff\xfe\x00 not text", "event_not_json", "bytes that are not UTF-8"),
        _Recipe(RECIPIENTS, sender, _json(**(recipient | {"sender": sender, "segments": 0})), "schema_invalid",
                "a recipient of 0 segments"),
        _Recipe(RECIPIENTS, stranger, _json(**recipient), "run_unknown",
                "a recipient of a run that does not exist (its organisation has no Twilio account either)"),
        _Recipe(SEND_RESULTS, "poison", b"[1, 2, 3]", "event_not_object", "a JSON list"),
        _Recipe(SEND_RESULTS, "poison", _json(schema_version=1, org_id=org_id, run_id=uuid.uuid4(),
                                              recipient_id=uuid.uuid4(), sender=sender, to="+14155550100",
                                              outcome="sent", message_sid=sid, segments=1),
                "run_unknown", "a send-result of a run that does not exist"),
        _Recipe(MESSAGE_STATUS, sid, _json(schema_version=1, org_id=org_id, message_sid=sid, status="exploded"),
                "schema_invalid", "a status Twilio does not have"),
        _Recipe(CONSENT, "12345", _json(schema_version=1, org_id=org_id, phone="12345", action="opt_out",
                                        source="keyword"), "schema_invalid", "a phone that is not E.164"),
    ]


async def inject(producer: AIOKafkaProducer, prefix: str, recipes: Iterable[_Recipe]) -> list[Poison]:
    injected = []
    for recipe in recipes:
        landed = await producer.send_and_wait(recipe.spec.full_name(prefix), value=recipe.value,
                                              key=recipe.key.encode())
        injected.append(Poison(landed.topic, landed.partition, landed.offset, recipe.error_code, recipe.what))
    return injected


async def dead_letters(bootstrap: str, prefix: str) -> list[DeadLetter]:
    """Every letter in every ``<topic>.dlq`` of the manifest, read from the start to the current end."""
    records = await records_to_end(bootstrap, {spec.dlq_name(prefix): DLQ_PARTITIONS for spec in ALL_TOPICS})
    return [DeadLetter.model_validate_json(record.value) for record in records]


def dlq_problems(poisons: list[Poison], letters: list[DeadLetter]) -> list[str]:
    """What differs between the poisons injected and the letters found (empty when they match)."""
    expected = {(p.topic, p.partition, p.offset): p for p in poisons}
    found: dict[tuple[str, int, int], DeadLetter] = {}
    problems = []
    for letter in letters:
        where = (letter.topic, letter.partition, letter.offset)
        poison = expected.get(where)
        if poison is None:
            problems.append(f"DLQ holds a record the suite did not poison: {letter.topic}[{letter.partition}]@"
                            f"{letter.offset} {letter.error_code}: {letter.error[:300]} value={letter.value[:200]!r}")
        elif letter.error_code != poison.error_code:
            problems.append(f"{poison.what} ({where}) was dead-lettered as {letter.error_code}, expected "
                            f"{poison.error_code}: {letter.error[:300]}")
        found[where] = letter
    missing = [f"{p.what} -> {p.error_code} ({p.topic}[{p.partition}]@{p.offset})" for w, p in expected.items()
               if w not in found]
    if missing:
        problems.append(f"poisoned events not dead-lettered: {missing}")
    return problems
