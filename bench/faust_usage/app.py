"""A faust app whose agents write the usage rollups into PostgreSQL: one per usage topic, or one for all.

    app = build_app(load_settings())
    app.main()  # faust's CLI: `python -m bench.faust_usage` runs a worker

Faust acks an event when its agent moves past it and commits acked offsets every
``broker_commit_interval`` (or ``broker_commit_every`` events), so after a kill -9 everything since the
last commit is delivered again: the handlers' natural-key idempotence in PostgreSQL is what keeps the
rollups exact, as for the service. Faust's ``processing_guarantee="exactly_once"`` would not change
that: it commits the consumed offsets in a Kafka transaction with the records the agents produce, and a
PostgreSQL transaction is no part of it.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import faust
from faust.types import StreamT

from libs.common.connections import Connections, open_connections
from libs.common.events import Event
from libs.common.kafka import Handler, dead_letter, handle_record
from libs.common.settings import Settings
from libs.common.topics import CONSENT, MESSAGE_STATUS, SEND_RESULTS, TopicSpec
from services.usage import db, handlers

TOPICS: tuple[TopicSpec[Event], ...] = (SEND_RESULTS, MESSAGE_STATUS, CONSENT)
MAX_RETRY_S = 120.0  # as the usage service's default


class UsageStreams(faust.App):
    """The faust app; its PostgreSQL pool and DLQ publisher open before the agents start."""

    def __init__(self, settings: Settings, group: str, *, exactly_once: bool = False) -> None:
        self.settings = settings
        self.group_id = f"{settings.topic_prefix}{group}"
        super().__init__(
            self.group_id,
            broker=f"kafka://{settings.kafka_bootstrap_servers}",
            key_serializer="raw",
            value_serializer="raw",
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
            topic_allow_declare=False,  # topics come from libs/common/topics.py, created before
            topic_disable_leader=True,  # no extra leader-election topic: there are no tables
            web_enabled=False,
            datadir=Path(tempfile.gettempdir()) / f"textpulse-faust-{self.group_id}",  # stays empty: no tables
            processing_guarantee="exactly_once" if exactly_once else "at_least_once",
        )
        self._stack = AsyncExitStack()
        self._connections: Connections | None = None
        self._stopping = asyncio.Event()

    async def on_start(self) -> None:
        await super().on_start()
        self._connections = await self._stack.enter_async_context(open_connections(self.settings, TOPICS))
        async with self._connections.pool.acquire() as conn:
            await db.check(conn)

    async def on_stop(self) -> None:
        self._stopping.set()
        await super().on_stop()
        await self._stack.aclose()

    @property
    def connections(self) -> Connections:
        if self._connections is None:
            raise RuntimeError("the app has not started")
        return self._connections

    def routes(self) -> Mapping[str, tuple[TopicSpec[Event], Handler]]:
        """Each topic's full name -> its spec and handler: the usage service's handler map."""
        deps = handlers.UsageDeps(pool=self.connections.pool, base_url=self.settings.public_base_url)
        by_spec: dict[TopicSpec[Event], Handler] = {
            SEND_RESULTS: functools.partial(handlers.record_send_result, deps=deps),
            MESSAGE_STATUS: functools.partial(handlers.record_status, deps=deps),
            CONSENT: functools.partial(handlers.record_consent, deps=deps),
        }
        return {spec.full_name(self.settings.topic_prefix): (spec, h) for spec, h in by_spec.items()}

    async def handle(self, stream: StreamT[Any]) -> None:
        """An agent's body: each event handled (or dead-lettered) before faust acks it."""
        routes = self.routes()

        async def to_dlq(record: Any, code: str, error: str) -> None:
            await dead_letter(self.connections.publisher, record, code, error, group_id=self.group_id,
                              stopping=self._stopping)

        async for event in stream.events():
            spec, handler = routes[event.message.topic]
            await handle_record(event.message, spec, handler, dead_letter=to_dlq, max_retry_s=MAX_RETRY_S,
                                stopping=self._stopping)


def build_app(settings: Settings, *, one_agent: bool = False, exactly_once: bool = False) -> UsageStreams:
    """The app with an agent on each usage topic (under the settings' topic prefix), so the topics are
    handled concurrently; ``one_agent``: one agent for all three, one event at a time, as the service does.
    ``exactly_once``: faust's Kafka transactions (see the module's docstring). Each variant has its own group.
    """
    group = "usage-faust" + ("-one" if one_agent else "") + ("-eos" if exactly_once else "")
    app = UsageStreams(settings, group, exactly_once=exactly_once)
    names = [spec.full_name(settings.topic_prefix) for spec in TOPICS]
    for subscribed in ([names] if one_agent else [[name] for name in names]):
        topic = app.topic(*subscribed, key_type=bytes, value_type=bytes)
        name = "usage-" + "+".join(n.removeprefix(settings.topic_prefix) for n in subscribed)
        app.agent(topic, name=name)(app.handle)
    return app
