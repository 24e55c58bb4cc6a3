"""Opt-out service: Twilio webhooks into the suppression table, the consent and status topics, and iMIS.

Wiring only. Two roles, run in one process or each in its own (``TEXTPULSE_OPTOUT_ROLE``: ``all``, the
default, ``edge`` or ``workers``; any number of edges, and of workers, may run at once):

- the edge answers ``POST /twilio/inbound`` and ``POST /twilio/status`` (webhooks.py), making each
  verified request durable in Kafka, or in PostgreSQL when Kafka cannot take it (storage.py), and counts
  bad signatures (``SignatureRefusals``, refusals.py: bad-signature counts -> webhook_signature_refusals,
  for the alert);
- the workers apply what the edges stored:

  - ``WebhookIntake`` (intake.py): textpulse.webhooks -> webhook_requests, in batches, each request once;
  - ``WebhookProcessor`` (processing.py): stored webhooks -> suppressions, consent history, ledger status;
  - ``EventRelay`` (relay.py): event_outbox -> Kafka (ConsentChanged keyed by phone, MessageStatus by SID);
  - ``WritebackWorker`` (writeback.py): imis_outbox -> each member's record in iMIS (writeback_targets.py).

Every process answers /healthz and /readyz (PostgreSQL and Kafka); only an edge answers the webhooks.

What other services rely on (migration 0004):

- ``suppressions``: scope ``''`` is the organisation-wide rule, any other scope is a sender address or
  Messaging Service SID (Twilio's own block). A STOP writes both, START/UNSTOP lifts both; a send must
  be refused when either the ``''`` row or the row for its sender exists.
- ``ConsentChanged`` on ``textpulse.consent``, keyed by phone: one event per scope changed
  (``sender`` None for the organisation-wide one), so a STOP gives two.
- ``send_ledger``: ``twilio_status`` only moves up the rank in status.py; ``price`` is the cost in USD
  as a positive number (Twilio's price negated), or the $0.001 failed-message fee.
- ``member_phone_index``: the audience service upserts (org, E.164 phone, member id, run, last_seen_at)
  for every recipient it resolves; the write-back updates every member seen with the number in the
  last ``member_window_days``.
- ``event_outbox``: any service may queue an event here in its own transaction; this service's relay
  publishes it. ``imis_accounts``: per-organisation iMIS credentials (base URL defaults to
  ``TEXTPULSE_IMIS_BASE_URL``); without a row, nothing is written back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp

from libs.common.connections import Connections, open_connections
from libs.common.public_hosts import outbound_client
from libs.common.runtime import Service, Worker, all_pass, any_of, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CONSENT, MESSAGE_STATUS, WEBHOOKS, group_id
from services.optout import webhooks
from services.optout.db import OptoutDb
from services.optout.handlers import HandlerDeps
from services.optout.intake import WebhookIntake
from services.optout.processing import ProcessorTuning, WebhookProcessor
from services.optout.refusals import SignatureRefusals
from services.optout.relay import EventRelay
from services.optout.signatures import AccountDirectory
from services.optout.storage import DurableStore, KafkaGate, WebhookWriter
from services.optout.writeback import WritebackTuning, WritebackWorker

NAME = "optout"


@dataclass(frozen=True)
class OptoutTuning:
    """Knobs with production defaults; tests shorten the back-offs."""

    processor: ProcessorTuning = field(default_factory=ProcessorTuning)
    writeback: WritebackTuning = field(default_factory=WritebackTuning)
    member_window_days: int = 400
    imis_timeout_s: float = 15.0
    # How long an account's token and URL are trusted from memory: a revoked token stops validating
    # signatures within this time (a changed one is tried at once, on the first signature that fails).
    account_cache_s: float = 5.0
    account_refresh_s: float = 5.0  # a failing signature re-reads its account at most this often
    refusals_flush_s: float = 5.0  # how often bad-signature counts are written for the alert
    # Twilio waits 15 s for an answer: past this the request is written to PostgreSQL instead of Kafka.
    kafka_append_timeout_s: float = 2.0
    kafka_retry_s: float = 1.0  # after a failed append, Kafka is skipped this long, then tried by one request
    account_outage_retry_s: float = 1.0  # while PostgreSQL is away, cached accounts are served this long
    intake_batch: int = 1000


@asynccontextmanager
async def build(settings: Settings, tuning: OptoutTuning | None = None) -> AsyncIterator[Service]:
    """The process ``settings.optout_role`` names: the edge, the workers, or both in one process."""
    tuning = tuning or OptoutTuning()
    role = settings.optout_role
    db = OptoutDb.load(SecretStore.from_settings(settings))
    async with (
        open_connections(settings, [CONSENT, MESSAGE_STATUS, WEBHOOKS]) as conn,
        outbound_client(env=settings.env, timeout=tuning.imis_timeout_s,
                        trusted_url=settings.imis_base_url) as imis_http,
    ):
        async with conn.pool.acquire() as c:
            await db.check(c)  # a broken query fails at boot, not at the first STOP
        # Set when a webhook was written to PostgreSQL directly; a processor in another process finds it
        # by its poll instead (ProcessorTuning.poll_s).
        webhook_wake = asyncio.Event()
        health = FastAPI(title=f"Textpulse {NAME} ({role})", docs_url=None, redoc_url=None)
        # The edge is ready while a webhook can be made durable: in Kafka, or in PostgreSQL when Kafka cannot
        # take it; the workers need both.
        ready_when = all_pass if role == "workers" else any_of("kafka", "postgres")
        health.include_router(health_router(NAME, conn.readiness_checks(), ready_when=ready_when))
        app: ASGIApp = health
        workers: list[Worker] = []
        intake = None
        if role in ("workers", "all"):
            intake, workers = _workers(settings, tuning, conn, db, imis_http, webhook_wake)
            await intake.start()
        if role in ("edge", "all"):
            inbox, refusals = _edge(settings, tuning, conn, db, webhook_wake)
            app = webhooks.WebhookEdge(inbox, fallback=health)
            workers.append(refusals.run)  # the counts live in this process's memory
        try:
            yield Service(app=app, workers=workers)
        finally:
            if intake is not None:
                await intake.stop()


def _edge(settings: Settings, tuning: OptoutTuning, conn: Connections, db: OptoutDb,
          webhook_wake: asyncio.Event) -> tuple[webhooks.WebhookInbox, SignatureRefusals]:
    """What answers Twilio: the accounts that check signatures, and the store that makes requests durable."""
    accounts = AccountDirectory(conn.pool, db, ttl_s=tuning.account_cache_s, refresh_s=tuning.account_refresh_s,
                                outage_retry_s=tuning.account_outage_retry_s)
    refusals = SignatureRefusals(conn.pool, db, flush_s=tuning.refusals_flush_s)
    gate = KafkaGate(retry_s=tuning.kafka_retry_s, clock=asyncio.get_running_loop().time)
    store = DurableStore(conn.publisher, WebhookWriter(conn.pool, db), gate,
                         append_timeout_s=tuning.kafka_append_timeout_s)
    return webhooks.WebhookInbox(store, accounts, webhook_wake, refusals), refusals


def _workers(settings: Settings, tuning: OptoutTuning, conn: Connections, db: OptoutDb, imis_http: httpx.AsyncClient,
             webhook_wake: asyncio.Event) -> tuple[WebhookIntake, list[Worker]]:
    """What applies the stored webhooks: intake, processor, relay and iMIS write-back (the intake not started)."""
    relay_wake, writeback_wake = asyncio.Event(), asyncio.Event()

    def committed() -> None:
        relay_wake.set()
        writeback_wake.set()

    deps = HandlerDeps(db=db, member_window_days=tuning.member_window_days)
    processor = WebhookProcessor(conn.pool, deps, wake=webhook_wake, on_committed=committed, tuning=tuning.processor)
    relay = EventRelay(conn.pool, db, conn.publisher, wake=relay_wake)
    writeback = WritebackWorker(conn.pool, db, imis_http, default_base_url=settings.imis_base_url,
                                wake=writeback_wake, tuning=tuning.writeback)
    intake = WebhookIntake(conn.pool, db, conn.publisher, kafka=settings.kafka,
                           group_id=group_id(NAME, settings.topic_prefix), prefix=settings.topic_prefix,
                           wake=webhook_wake, batch=tuning.intake_batch,
                           session_timeout_ms=settings.kafka_session_timeout_ms,
                           group_instance_id=settings.kafka_group_instance_id)
    return intake, [processor.run, intake, relay.run, writeback.run]
