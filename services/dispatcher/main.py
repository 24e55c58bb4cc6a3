"""Dispatcher: sends recipient events through Twilio at each sender's rate, exactly once.

Wiring only: settings, connections, the ledger store, Twilio accounts, the consumer and its lanes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from libs.common.connections import open_connections
from libs.common.errors import PermanentError
from libs.common.events import Recipient
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CONSENT, RECIPIENTS, SEND_RESULTS, group_id
from services.dispatcher.accounts import TwilioAccounts
from services.dispatcher.clock import Clock, OffsetClock, SystemClock
from services.dispatcher.consumer import DispatchConsumer
from services.dispatcher.db import QUERIES, DispatchStore
from services.dispatcher.delivery import Attempt, Delivered, Deliverer
from services.dispatcher.holds import HoldReleaser
from services.dispatcher.ledger_writer import LedgerWriter
from services.dispatcher.pacing import SlidingWindow
from services.dispatcher.send_rules import SendGate
from services.dispatcher.snapshot import check_against_snapshot

NAME = "dispatcher"


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
        clock: Clock = (OffsetClock(Path(settings.dispatcher_clock_offset_file))
                        if settings.dispatcher_clock_offset_file else SystemClock())
        gate = SendGate(conn.pool)
        async with conn.pool.acquire() as check_conn:
            await gate.check(check_conn)
        deliverer = Deliverer(store, process_id=process_id, clock=clock, gate=gate)
        releaser = HoldReleaser(conn.pool, conn.publisher, clock=clock)

        verification: dict[str, str] = {}

        async def deliver(event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
            twilio = await accounts.for_org(event.org_id)
            return await deliverer.deliver(event, attempt, twilio, verification.get(event.sender, "verified"),
                                           not_before=not_before)

        async def check_events(events: Sequence[Recipient]) -> list[PermanentError | None]:
            rows = await store.snapshot_rows(list(events))
            return [check_against_snapshot(e, row) for e, row in zip(events, rows, strict=True)]

        async def setup_sender(event: Recipient) -> SlidingWindow:
            await accounts.for_org(event.org_id)  # an organisation without an account is refused here
            known = await store.sender_rate(event.org_id, event.sender)
            if known is None:  # the snapshot check saw it; it was deleted since
                raise PermanentError("sender_unknown", f"{event.sender} is not a sender of organisation {event.org_id}")
            verification[event.sender] = known[0]
            window = SlidingWindow(known[1])
            for anchor, segments in await store.recent_sends(event.sender):
                window.record(anchor, segments)
            return window

        consumer = DispatchConsumer(
            kafka=settings.kafka, group_id=group_id("dispatcher", settings.topic_prefix),
            prefix=settings.topic_prefix, publisher=conn.publisher, deliver=deliver, setup_sender=setup_sender,
            refresh_run=store.refresh_run_counts, check_events=check_events, clock=clock,
            session_timeout_ms=settings.kafka_session_timeout_ms,
        )
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        writer.start()
        await consumer.start()
        try:
            yield Service(app=app, workers=[consumer.run, releaser.run])
        finally:
            await consumer.stop()
            await writer.stop()
            await accounts.aclose()
