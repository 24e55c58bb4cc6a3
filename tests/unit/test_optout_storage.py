"""The opt-out edge's choice between Kafka and PostgreSQL (services/optout/storage.py): pure parts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from libs.common.kafka import decode_event
from libs.common.topics import WEBHOOKS
from services.optout.db import IncomingWebhook
from services.optout.storage import KafkaGate, as_event, event_json, partition_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_gate_is_open_until_an_append_fails_then_one_request_at_a_time_probes() -> None:
    clock = Clock()
    gate = KafkaGate(retry_s=1.0, clock=clock)
    assert gate.begin() and gate.begin()  # healthy: every request tries Kafka
    gate.failed()
    assert not gate.healthy and not gate.begin()  # straight to PostgreSQL for retry_s
    clock.now += 1.0
    assert gate.begin()  # this one probes
    assert not gate.begin()  # the others do not wait on a broker that may still be down
    gate.failed()
    assert not gate.begin()
    clock.now += 1.0
    assert gate.begin()
    gate.succeeded()
    assert gate.healthy and gate.begin() and gate.begin()


def test_a_probe_cancelled_before_it_knew_lets_the_next_request_probe() -> None:
    clock = Clock()
    gate = KafkaGate(retry_s=1.0, clock=clock)
    gate.failed()
    clock.now += 1.0
    assert gate.begin()
    gate.abandoned()
    assert gate.begin() and not gate.healthy


def _webhook(kind: str, **params: str) -> IncomingWebhook:
    return IncomingWebhook(uuid.uuid4(), kind, uuid.UUID(int=7), "AC" + "0" * 32,  # type: ignore[arg-type]
                           "https://hooks.example.org/twilio/inbound", params, datetime(2026, 12, 2, tzinfo=UTC))


def test_one_members_messages_and_one_messages_callbacks_share_a_key() -> None:
    org = uuid.UUID(int=7)
    stop = _webhook("inbound", From="+14155550100", MessageSid="SM" + "1" * 32, Body="STOP")
    start = _webhook("inbound", From="+14155550100", MessageSid="SM" + "2" * 32, Body="START")
    sent = _webhook("status", MessageSid="SM" + "3" * 32, MessageStatus="sent", To="+14155550100")
    delivered = _webhook("status", MessageSid="SM" + "3" * 32, MessageStatus="delivered", To="+14155550101")
    assert partition_key(stop) == partition_key(start) == f"{org}:+14155550100"
    assert partition_key(sent) == partition_key(delivered) == f"{org}:SM{'3' * 32}"


def test_the_event_carries_the_request_id_and_the_time_it_arrived() -> None:
    webhook = _webhook("inbound", From="+14155550100", Body="STOP")
    event = as_event(webhook)
    assert event.event_id == webhook.request_id and event.occurred_at == webhook.received_at
    assert event.params == webhook.params and event.kind == "inbound"


def test_the_edge_json_is_the_event_the_intake_reads() -> None:
    # Built without the model on the hot path: it must decode to exactly what as_event would have sent,
    # non-ASCII and JSON-special characters included.
    webhook = _webhook("inbound", From="+14155550100", Body='Arrêt "STOP" \\ 🛑\n', To="+18885550100")
    decoded = decode_event(WEBHOOKS, event_json(webhook))
    assert decoded == as_event(webhook)
    status = _webhook("status", MessageSid="SM" + "3" * 32, MessageStatus="delivered")
    assert decode_event(WEBHOOKS, event_json(status)) == as_event(status)
