"""The links service's PostgreSQL access: short codes and clicks (0047)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import asyncpg

from libs.common.db import Queries
from libs.common.events import LinkClicked

QUERIES: Final = Queries.load(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True, slots=True)
class ShortLink:
    code: str
    org_id: uuid.UUID
    run_id: uuid.UUID
    recipient_id: uuid.UUID
    url: str
    expires_at: datetime


class LinkStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def check(self) -> None:
        async with self._pool.acquire() as conn:
            await QUERIES.check(conn)

    async def find_many(self, codes: list[str]) -> list[ShortLink | None]:
        """What each code points at, in order (None: not known)."""
        async with self._pool.acquire() as conn:
            rows = await QUERIES.fetch(conn, "find-links", codes=codes)
        found = {row["code"]: ShortLink(**dict(row)) for row in rows}
        return [found.get(code) for code in codes]

    async def record_click(self, click: LinkClicked) -> None:
        """Store one click; a click already stored (the same event id) is left as it is."""
        async with self._pool.acquire() as conn:
            await QUERIES.execute(conn, "record-click", click_id=click.event_id, code=click.code,
                                  org_id=click.org_id, run_id=click.run_id, recipient_id=click.recipient_id,
                                  clicked_at=click.occurred_at, agent_class=click.agent_class,
                                  client_network=click.client_network)

    async def record_clicks(self, clicks: list[LinkClicked]) -> None:
        """Store a batch of clicks in one statement; clicks already stored are left as they are."""
        if not clicks:
            return
        async with self._pool.acquire() as conn:
            await QUERIES.execute(
                conn, "record-clicks", click_ids=[c.event_id for c in clicks], codes=[c.code for c in clicks],
                org_ids=[c.org_id for c in clicks], run_ids=[c.run_id for c in clicks],
                recipient_ids=[c.recipient_id for c in clicks], clicked_ats=[c.occurred_at for c in clicks],
                agent_classes=[c.agent_class for c in clicks], client_networks=[c.client_network for c in clicks])
