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
from libs.common.events import Recipient
from libs.common.runtime import Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CONSENT, RECIPIENTS, SEND_RESULTS, group_id
from services.dispatcher.accounts import TwilioAccounts
from services.dispatcher.clock import Clock, OffsetClock, SystemClock
from services.dispatcher.consumer import DispatchConsumer, Verdict
from services.dispatcher.db import QUERIES, DispatchStore
from services.dispatcher.delivery import Attempt, Delivered, Deliverer
from services.dispatcher.holds import HoldReleaser
from services.dispatcher.ledger_writer import LedgerWriter
from services.dispatcher.one_off import QUERIES as ONE_OFF_QUERIES
from services.dispatcher.one_off import OneOffSender
from services.dispatcher.pacing import SlidingWindow
from services.dispatcher.send_rules import SendGate
from services.dispatcher.sender_profiles import SenderProfiles
from services.dispatcher.snapshot import check_against_snapshot

NAME = "dispatcher"


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Service]:
    # A first send's ledger work is batched on the ledger writer's connection; a redelivery holds a
    # connection of its own across its Twilio call.
    async with open_connections(settings, [RECIPIENTS, SEND_RESULTS, CONSENT], min_pool_size=60) as conn:
        process_id = f"{socket.gethostname()}:{os.getpid()}"
        writer = LedgerWriter(conn.pool, QUERIES, process_id)
        clock: Clock = (OffsetClock(Path(settings.dispatcher_clock_offset_file))
                        if settings.dispatcher_clock_offset_file else SystemClock())
        store = DispatchStore(conn.pool, writer=writer, now=clock.time)
        await store.check()
        secrets = SecretStore.from_settings(settings)
        async with conn.pool.acquire() as check_conn:
            await secrets.check(check_conn)
        accounts = TwilioAccounts(store, secrets, api_base_url=settings.twilio_api_base_url,
                                  timeout_s=settings.twilio_timeout_s, ttl_s=settings.credentials_ttl_s)
        gate = SendGate(conn.pool)
        async with conn.pool.acquire() as check_conn:
            await gate.check(check_conn)
        deliverer = Deliverer(store, process_id=process_id, clock=clock, gate=gate)
        releaser = HoldReleaser(conn.pool, conn.publisher, clock=clock)

        profiles = SenderProfiles(store, ttl_s=settings.credentials_ttl_s)

        async def deliver(event: Recipient, attempt: Attempt, not_before: float) -> Delivered:
            twilio = await accounts.for_org(event.org_id)
            return await deliverer.deliver(event, attempt, twilio, await profiles.verification(event),
                                           not_before=not_before)

        async def check_events(events: Sequence[Recipient]) -> list[Verdict]:
            rows = await store.snapshot_rows(list(events))
            gate.note_addresses(events, rows)
            earlier = await store.earlier_results(list(events))
            return [check_against_snapshot(e, row) or done
                    for e, row, done in zip(events, rows, earlier, strict=True)]

        async def setup_sender(event: Recipient) -> SlidingWindow:
            await accounts.for_org(event.org_id)  # an organisation without an account is refused here
            return await profiles.window_for(event)

        consumer = DispatchConsumer(
            kafka=settings.kafka, group_id=group_id("dispatcher", settings.topic_prefix),
            prefix=settings.topic_prefix, publisher=conn.publisher, deliver=deliver, setup_sender=setup_sender,
            refresh_run=store.refresh_run_counts, check_events=check_events, clock=clock,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            group_instance_id=settings.kafka_group_instance_id,
        )
        async with conn.pool.acquire() as check_conn:
            await ONE_OFF_QUERIES.check(check_conn)
        one_offs = OneOffSender(conn.pool, accounts.for_org, recent_sends=store.recent_sends,
                                lane_window=consumer.window_for, clock=clock, process_id=process_id)
        app = FastAPI(title=f"Textpulse {NAME}", docs_url=None, redoc_url=None)
        app.include_router(health_router(NAME, conn.readiness_checks()))
        writer.start()
        await consumer.start()
        try:
            yield Service(app=app, workers=[consumer, one_offs.run, releaser.run])
        finally:
            await consumer.stop()
            await writer.stop()
            await accounts.aclose()
