"""Dispatcher: sends recipient events through Twilio at each sender's rate, exactly once.

Wiring only: settings, connections, the ledger store, Twilio accounts, the consumer and its lanes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.events import Recipient
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CONSENT, RECIPIENTS, SEND_RESULTS
from services.dispatcher.accounts import TwilioAccounts
from services.dispatcher.consumer import DispatchConsumer
from services.dispatcher.db import QUERIES, DispatchStore
from services.dispatcher.delivery import Attempt, Delivered, Deliverer
from services.dispatcher.ledger_writer import LedgerWriter
from services.dispatcher.pacing import SlidingWindow

NAME = "dispatcher"
DEFAULT_SEGMENTS_PER_SECOND = 3.0


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    # A first send's ledger work is batched on the ledger writer's connection; a redelivery holds a
    # connection of its own across its Twilio call.
    async with open_connections(settings, [RECIPIENTS, SEND_RESULTS, CONSENT], min_pool_size=60) as conn:
        process_id = f"{socket.gethostname()}:{os.getpid()}"
        writer = LedgerWriter(conn.pool, QUERIES, process_id)
        store = DispatchStore(conn.pool, writer=writer)
        await store.check()
        secrets = SecretStore.from_settings(settings)
        async with conn.pool.acquire() as check_conn:
            await secrets.check(check_conn)
        accounts = TwilioAccounts(store, secrets, api_base_url=settings.twilio_api_base_url,
                                  timeout_s=settings.twilio_timeout_s, ttl_s=settings.credentials_ttl_s)
        deliverer = Deliverer(store, process_id=process_id)

        verification: dict[str, str] = {}

        async def deliver(event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
            twilio = await accounts.for_org(event.org_id)
            return await deliverer.deliver(event, attempt, twilio, verification.get(event.sender, "verified"),
                                           not_before=not_before)

        async def setup_sender(event: Recipient) -> SlidingWindow:
            await accounts.for_org(event.org_id)  # an organisation without an account is refused here
            known = await store.sender_rate(event.org_id, event.sender)
            verification[event.sender] = known[0] if known else "verified"
            window = SlidingWindow(known[1] if known else DEFAULT_SEGMENTS_PER_SECOND)
            for anchor, segments in await store.recent_sends(event.sender):
                window.record(anchor, segments)
            return window

        consumer = DispatchConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=f"{settings.topic_prefix}dispatcher",
            prefix=settings.topic_prefix, publisher=conn.publisher, deliver=deliver, setup_sender=setup_sender,
            refresh_run=store.refresh_run_counts,
            session_timeout_ms=settings.kafka_session_timeout_ms,
        )
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        writer.start()
        await consumer.start()
        try:
            yield Service(app=app, workers=[consumer.run])
        finally:
            await consumer.stop()
            await writer.stop()
            await accounts.aclose()
