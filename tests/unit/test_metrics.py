"""The metrics' label rules, and /metrics beside /healthz: what a scrape sees, and whom it is refused to."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from libs.common import metrics
from libs.common.events import Recipient
from libs.common.runtime import Check, health_router
from libs.common.twilio_errors import SendFailure
from libs.common.twilio_sender import Accepted
from services.dispatcher.clock import SystemClock
from services.dispatcher.db import LedgerEntry
from services.dispatcher.delivery import Attempt, Deliverer


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("code", "label"), [
    (None, "none"), (21610, "21610"), (30007, "30007"), (20429, "20429"), (30032, "30032"),
    (12345, "other"), (0, "0"), (-1, "other"),
])
def test_error_codes_are_known_twilio_codes_or_other(code: int | None, label: str) -> None:
    assert metrics.error_code_label(code) == label


@pytest.mark.parametrize(("sender", "label"), [
    ("+18885550100", "+18885550100"),
    ("+447700900123", "+447700900123"),
    ("MG" + "0123456789abcdef" * 2, "MG" + "0123456789abcdef" * 2),
    ("MG123", "other"), ("18885550100", "other"), ("+1888555010\n", "other"), ("", "other"),
    ("alice@example.org", "other"),
])
def test_a_sender_label_is_a_business_number_or_messaging_service_sid(sender: str, label: str) -> None:
    assert metrics.sender_label(sender) == label


def test_a_text_counts_its_outcome_and_its_segments_by_sender() -> None:
    sender = "+18885550190"
    before = value("textpulse_texts_total", outcome="sent", error_code="none")
    metrics.count_text("sent", None, sender=sender, segments=3)
    metrics.count_text("failed", 99999)
    assert value("textpulse_texts_total", outcome="sent", error_code="none") == before + 1
    assert value("textpulse_segments_total", sender=sender) >= 3
    assert value("textpulse_texts_total", outcome="failed", error_code="other") >= 1


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    """An aiokafka consumer as the lag sees it: its assignment and each partition's last high watermark."""

    highwaters: dict[TP, int | None]

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        assert tp in self.highwaters, "Partition is not assigned"  # as aiokafka's own
        return self.highwaters[tp]


def lag(group: str, partition: int) -> float | None:
    labels = {"group": group, "topic": "t", "partition": str(partition)}
    return REGISTRY.get_sample_value("textpulse_consumer_lag", labels)


def test_lag_is_recorded_once_both_ends_are_known_and_never_below_zero() -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = FakeConsumer({TP("t", 0): None, TP("t", 1): 5, TP("t", 2): 120, TP("t", 3): 100})
    tracked = metrics.ConsumerLag(group)
    tracked.observe(consumer, TP("t", 0), 5)  # no fetch yet: the high watermark is unknown
    tracked.observe(consumer, TP("t", 1), None)  # nothing committed yet
    tracked.observe(consumer, TP("t", 2), 100)
    tracked.observe(consumer, TP("t", 3), 120)  # a commit ahead of the last fetch's high watermark
    assert (lag(group, 0), lag(group, 1), lag(group, 2), lag(group, 3)) == (None, None, 20, 0)


def test_a_revoked_partition_s_lag_is_dropped_not_left_beside_its_new_owner_s() -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = FakeConsumer({TP("t", 0): 50, TP("t", 1): 70})
    tracked = metrics.ConsumerLag(group)
    tracked.observe(consumer, TP("t", 0), 40)
    tracked.observe(consumer, TP("t", 1), 60)
    del consumer.highwaters[TP("t", 1)]  # a rebalance moved partition 1 to another member
    tracked.retain(consumer)
    assert (lag(group, 0), lag(group, 1)) == (10, None)
    tracked.retain(consumer)  # idempotent
    assert lag(group, 0) == 10
    tracked.observe(consumer, TP("t", 1), 65)  # a commit that raced the revocation
    assert lag(group, 1) is None


def test_metric_names_are_the_series_prometheus_stores() -> None:
    names = metrics.METRIC_NAMES
    assert {"textpulse_texts_total", "textpulse_twilio_call_seconds_bucket", "textpulse_twilio_call_seconds_count",
            "textpulse_consumer_lag", "textpulse_outbox_backlog"} <= names
    assert "textpulse_texts" not in names and "textpulse_consumer_lag_total" not in names


def test_no_metric_has_a_label_that_could_name_a_member() -> None:
    exposed = {family.name: family for family in text_string_to_metric_families(metrics.exposition().decode())}
    ours = {name: family for name, family in exposed.items() if name.startswith("textpulse_")}
    assert "textpulse_texts" in ours
    labels = {label for family in ours.values() for sample in family.samples for label in sample.labels}
    assert labels <= {"outcome", "error_code", "sender", "group", "topic", "partition", "code", "kind", "verdict",
                      "outbox", "component", "check", "result", "le"}


def _app(checks: dict[str, Check] | None = None) -> FastAPI:
    app = FastAPI()
    app.include_router(health_router("svc", checks or {}))
    return app


@asynccontextmanager
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc.test") as c:
        yield c


async def test_metrics_are_served_in_prometheus_text_format() -> None:
    metrics.count_text("suppressed", 21610)
    async with client(_app()) as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in families["textpulse_texts"].samples}
    assert samples[("textpulse_texts_total", (("error_code", "21610"), ("outcome", "suppressed")))] >= 1


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
async def test_a_scrape_through_a_proxy_is_refused(header: str) -> None:
    async with client(_app()) as c:
        response = await c.get("/metrics", headers={header: "203.0.113.7"})
    assert response.status_code == 404
    assert "textpulse_" not in response.text


async def test_readiness_sets_the_ready_gauge_and_counts_each_failed_check() -> None:
    healthy = True

    async def postgres() -> None:
        if not healthy:
            raise ConnectionRefusedError(111, "refused")

    app = _app({"postgres": postgres})
    failures = value("textpulse_readiness_failures_total", check="postgres")
    async with client(app) as c:
        assert (await c.get("/readyz")).status_code == 200
        assert value("textpulse_ready", component="svc") == 1
        healthy = False
        assert (await c.get("/readyz")).status_code == 503
    assert value("textpulse_ready", component="svc") == 0
    assert value("textpulse_readiness_failures_total", check="postgres") == failures + 1


class OneEntryLedger:
    """A ledger with one claimed entry, for the delivery's own counting (the SQL is tested elsewhere)."""

    def __init__(self, event: Recipient) -> None:
        self.token = uuid.uuid4()
        self.claimed = LedgerEntry(conn=None, key=0, event=event, state="claimed", claim_token=self.token,
                                 claimed_at=datetime.now(UTC))

    async def run_state(self, run_id: uuid.UUID) -> str:
        return "sending"

    @asynccontextmanager
    async def entry(self, *_: object, **__: object) -> AsyncIterator[LedgerEntry]:
        yield self.claimed

    async def record_sent(self, *_: object) -> None:
        return None

    async def record_final(self, *_: object) -> None:
        return None

    async def mark_bad_number(self, *_: object) -> None:
        return None

    async def recent_outcomes(self, *_: object) -> tuple[int, int]:
        return 0, 0


class Twilio:
    def __init__(self, failure: SendFailure | None) -> None:
        self.failure = failure

    async def send(self, **_: object) -> Accepted:
        if self.failure is not None:
            raise self.failure
        return Accepted(sid="SM" + "0" * 32, status="queued", segments=2, price=None)


@pytest.mark.parametrize(("failure", "outcome", "code", "call"), [
    (None, "sent", "none", "accepted"),
    (SendFailure("bad_number", 21211, "not a valid number"), "failed", "21211", "bad_number"),
    (SendFailure("fail", 21617, "too long"), "failed", "21617", "fail"),
])
async def test_a_delivery_counts_its_outcome_its_claim_and_its_twilio_call(
    failure: SendFailure | None, outcome: str, code: str, call: str,
) -> None:
    sender = "+18885550191"
    event = Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                      sender=sender, to="+14155550100", body="Hi", segments=2)
    ledger = OneEntryLedger(event)
    texts = value("textpulse_texts_total", outcome=outcome, error_code=code)
    segments = value("textpulse_segments_total", sender=sender)
    claims = value("textpulse_ledger_claim_seconds_count")
    calls = value("textpulse_twilio_call_seconds_count", outcome=call)
    deliverer = Deliverer(ledger, process_id="test", clock=SystemClock())
    await deliverer.deliver(event, Attempt(token=ledger.token), Twilio(failure))
    assert value("textpulse_texts_total", outcome=outcome, error_code=code) == texts + 1
    assert value("textpulse_segments_total", sender=sender) == segments + (2 if failure is None else 0)
    assert value("textpulse_ledger_claim_seconds_count") == claims + 1
    assert value("textpulse_twilio_call_seconds_count", outcome=call) == calls + 1
