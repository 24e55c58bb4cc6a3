"""Events service: outgoing signed events for organisations' webhook endpoints.

Wiring only. Three workers run beside /healthz, /readyz and /metrics:

- the intake (intake.py): send-results, message-status, link-clicks, webhooks and consent, each record's
  events stored with their deliveries before its offset is committed;
- the run announcer (runs.py): ended runs as ``run_completed``;
- the deliverer (delivery.py): each delivery POSTed, signed, retried with back-off for 24 hours, in order
  per member and endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from libs.common import secret_store
from libs.common.connections import open_connections
from libs.common.kafka import EventConsumer
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CONSENT, LINK_CLICKS, MESSAGE_STATUS, SEND_RESULTS, WEBHOOKS, group_id
from services.events.db import QUERIES, EventStore
from services.events.delivery import Deliverer, DeliveryTuning
from services.events.intake import Intake
from services.events.runs import RunAnnouncer

NAME = "events"


@dataclass(frozen=True)
class EventsTuning:
    """Knobs with production defaults; tests shorten the waits."""

    delivery: DeliveryTuning = field(default_factory=DeliveryTuning)
    runs_poll_s: float = 5.0
    max_retry_s: float = 120.0


@asynccontextmanager
async def build(settings: Settings, tuning: EventsTuning | None = None) -> AsyncIterator[Service]:
    tuning = tuning or EventsTuning()
    async with open_connections(settings, [SEND_RESULTS, MESSAGE_STATUS, LINK_CLICKS, WEBHOOKS, CONSENT]) as conn:
        secrets = SecretStore.from_settings(settings)
        async with conn.pool.acquire() as check:
            await QUERIES.check(check)
            await secret_store.QUERIES.check(check)
        store = EventStore(conn.pool)
        intake = Intake(store)
        consumer = EventConsumer(
            kafka=settings.kafka, group_id=group_id(NAME, settings.topic_prefix),
            handlers={SEND_RESULTS: intake.send_result, MESSAGE_STATUS: intake.message_status,
                      LINK_CLICKS: intake.link_clicked, WEBHOOKS: intake.webhook, CONSENT: intake.consent},
            publisher=conn.publisher, prefix=settings.topic_prefix,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            group_instance_id=settings.kafka_group_instance_id, max_retry_s=tuning.max_retry_s,
        )
        deliverer = Deliverer(store, secrets, tuning=tuning.delivery)
        announcer = RunAnnouncer(store, poll_s=tuning.runs_poll_s)
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        await consumer.start()
        try:
            yield Service(app=app, workers=[consumer, deliverer, announcer.run])
        finally:
            await consumer.stop()
