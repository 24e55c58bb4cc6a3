"""Every Prometheus metric of Textpulse, and the rules that keep their labels bounded.

Each service process serves the default registry at ``/metrics`` (``runtime.health_router``); a metric
a service never touches is simply absent there, so the definitions can live in one place.

Label rules (every label value has a small, known set of values; a label never names a member):

- ``outcome``: a ledger outcome (``sent``, ``failed``, ``suppressed``, ``expired``, ``cancelled``).
- ``error_code``: a Twilio error code Textpulse knows (``KNOWN_TWILIO_CODES``), ``none``, or ``other``.
- ``sender``: the business sender, as the organisation's ``senders`` table spells it: a toll-free or long
  number (E.164) or a Messaging Service SID (``MG`` + 32 hex). Never a member's number: the
  dispatcher's ``sender`` is always a row of that table, which staff create, so the label's values grow
  with the organisations' senders, not with their members. Anything else is ``other``.
- ``topic``, ``partition``, ``group``: the topic manifest (``topics.py``) and its partition counts.
- ``code`` (dead letters): the consumer's reason codes, stable snake_case strings from the code.
- ``kind`` / ``verdict`` (webhooks): ``inbound`` or ``status``; ``accepted`` or the refusal's reason code.
- ``outbox``: ``alerts``, ``imis_writeback``, ``events``.
- ``result`` (outgoing events): ``delivered``, ``retrying`` or ``failed`` (given up after 24 hours).
- ``component`` (readiness): the service's name (``dispatcher``, ...). Not ``service``: a ServiceMonitor's
  targets carry a ``service`` label of their own (the Kubernetes Service), which would rename ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from libs.common.twilio_errors import REMEDIES
from libs.common.twilio_facts import ERROR_MEANINGS, FEE_EXEMPT_ERRORS

__all__ = ["ALL_METRICS", "CONTENT_TYPE_LATEST", "KNOWN_TWILIO_CODES", "METRIC_NAMES", "ConsumerLag",
           "count_text", "error_code_label", "exposition", "sender_label"]

# Each counter's and histogram's *_created series would double what is stored, and nothing reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated

KNOWN_TWILIO_CODES: Final = frozenset(ERROR_MEANINGS) | frozenset(REMEDIES) | FEE_EXEMPT_ERRORS
_SENDER = re.compile(r"\+[1-9][0-9]{6,14}|MG[0-9a-f]{32}")

# Seconds: a ledger claim is one short statement (batched), a Twilio call up to the client's timeout.
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

TEXTS = Counter("textpulse_texts", "Recipients whose send ended, by ledger outcome and Twilio error code",
                ["outcome", "error_code"])
SEGMENTS = Counter("textpulse_segments", "Segments sent (as Twilio bills them), by business sender", ["sender"])
LANE_QUEUE_DEPTH = Gauge("textpulse_dispatcher_lane_queue_depth",
                         "Recipients waiting in this dispatcher's sender lanes")
LANES = Gauge("textpulse_dispatcher_lanes", "Sender lanes open in this dispatcher")
LEDGER_CLAIM_SECONDS = Histogram("textpulse_ledger_claim_seconds",
                                 "Time to claim (or find) a recipient's ledger entry before its send",
                                 buckets=_FAST_BUCKETS)
TWILIO_CALL_SECONDS = Histogram("textpulse_twilio_call_seconds",
                                "Twilio create-message calls, by outcome (accepted, or the failure's remedy)",
                                ["outcome"], buckets=_CALL_BUCKETS)
WEBHOOKS = Counter("textpulse_webhooks", "Twilio webhooks received, by kind and verdict", ["kind", "verdict"])
CONSUMER_LAG = Gauge("textpulse_consumer_lag",
                     "Records of a partition past the group's committed offset (as of the last fetch)",
                     ["group", "topic", "partition"])
DLQ_RECORDS = Counter("textpulse_dlq_records", "Records written to a dead-letter topic, by source topic and code",
                      ["topic", "code"])
OUTBOX_BACKLOG = Gauge("textpulse_outbox_backlog", "Outbox rows not yet done (sampled periodically)", ["outbox"])
OUTBOX_OLDEST_SECONDS = Gauge("textpulse_outbox_oldest_seconds",
                              "Age of the oldest outbox row not yet done, 0 when none (sampled periodically)",
                              ["outbox"])
SCHEDULER_LATENESS_SECONDS = Histogram("textpulse_scheduler_lateness_seconds",
                                       "How late after its occurrence a run was published", buckets=_LATENESS_BUCKETS)
SCHEDULER_MISSED = Counter("textpulse_scheduler_runs_missed", "Runs marked missed: later than their campaign allows")
EVENT_DELIVERIES = Counter("textpulse_event_deliveries",
                           "Attempts to POST an outgoing event to an organisation's endpoint, by result", ["result"])
READY = Gauge("textpulse_ready", "1 when the last /readyz passed every check, else 0", ["component"])
READINESS_FAILURES = Counter("textpulse_readiness_failures", "Failed /readyz checks, by check", ["check"])

# The series names Prometheus stores for each metric (a counter gains _total, a histogram its parts):
# what the alert rules and the dashboard may refer to (tests/unit/test_monitoring.py).
ALL_METRICS: Final = (TEXTS, SEGMENTS, LANE_QUEUE_DEPTH, LANES, LEDGER_CLAIM_SECONDS, TWILIO_CALL_SECONDS,
                      WEBHOOKS, CONSUMER_LAG, DLQ_RECORDS, OUTBOX_BACKLOG, OUTBOX_OLDEST_SECONDS,
                      SCHEDULER_LATENESS_SECONDS, SCHEDULER_MISSED, EVENT_DELIVERIES, READY, READINESS_FAILURES)
_SUFFIXES: Final = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
# Every series a scrape job itself adds, and the process metrics prometheus-client exports on Linux.
_SCRAPE_SERIES: Final = ("up", "scrape_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
                         "process_open_fds", "process_start_time_seconds")


def _series(metrics: Iterable[Counter | Gauge | Histogram]) -> frozenset[str]:
    names = set()
    for metric in metrics:
        family = next(iter(metric.describe()))
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return frozenset(names)


METRIC_NAMES: Final = _series(ALL_METRICS) | frozenset(_SCRAPE_SERIES)


def error_code_label(code: int | None) -> str:
    """A Twilio error code as a label: known codes as themselves, no code as ``none``, the rest ``other``."""
    if code is None:
        return "none"
    return str(code) if code in KNOWN_TWILIO_CODES else "other"


def sender_label(sender: str) -> str:
    """A business sender as a label (see the module's rules); what is not one is ``other``."""
    return sender if _SENDER.fullmatch(sender) else "other"


def count_text(outcome: str, code: int | None, *, sender: str = "", segments: int = 0) -> None:
    """One recipient's send ended with ``outcome`` (its ledger row was just written); ``segments`` went
    from ``sender``."""
    TEXTS.labels(outcome, error_code_label(code)).inc()
    if segments:
        SEGMENTS.labels(sender_label(sender)).inc(segments)


class Partition(Protocol):
    topic: str
    partition: int


class Consumer(Protocol):
    """What of an aiokafka consumer the lag needs."""

    def assignment(self) -> Iterable[Partition]: ...

    def highwater(self, partition: Partition) -> int | None: ...


class ConsumerLag:
    """One consumer's ``textpulse_consumer_lag`` series. A partition it no longer holds is dropped, so a
    revoked partition's last figure does not linger beside its new owner's (the alert sums them)."""

    def __init__(self, group: str) -> None:
        self._group = group
        self._series: set[tuple[str, int]] = set()

    def observe(self, consumer: Consumer, tp: Partition, next_offset: int | None) -> None:
        """``tp``'s lag once both ends are known (aiokafka learns the high watermark from fetches).

        A partition revoked meanwhile (a rebalance between the commit and now) is skipped: aiokafka's
        ``highwater`` asserts that the partition is assigned, and a metric must never fail a commit."""
        if next_offset is None or (tp.topic, tp.partition) not in _held(consumer):
            return
        highwater = consumer.highwater(tp)
        if highwater is None:
            return
        CONSUMER_LAG.labels(self._group, tp.topic, str(tp.partition)).set(max(highwater - next_offset, 0))
        self._series.add((tp.topic, tp.partition))

    def retain(self, consumer: Consumer) -> None:
        """Drop the series of partitions no longer assigned to ``consumer``."""
        held = _held(consumer)
        for topic, partition in self._series - held:
            CONSUMER_LAG.remove(self._group, topic, str(partition))
        self._series &= held


def _held(consumer: Consumer) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in consumer.assignment()}


def exposition() -> bytes:
    """The default registry in Prometheus' text format."""
    return generate_latest(REGISTRY)
