"""Each sender's pace and verification, from its ``senders`` row: read when its lane starts, then every
``ttl_s`` for all of this process's senders in one statement.

A rate changed in Settings (``PATCH /api/v1/senders/{id}``) reaches the sender's pacing window within
``ttl_s`` (the credentials' TTL, at most 5 s): the window's limit is changed in place, so the segments it
already holds keep counting. A lower rate therefore holds the next message until the last second's
segments fit it; a higher one applies to the next message. A sender whose row has gone keeps what was read
last: the snapshot check refuses its next run's recipients.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from libs.common.errors import PermanentError
from libs.common.events import Recipient
from services.dispatcher.db import DispatchStore
from services.dispatcher.pacing import SlidingWindow


@dataclass
class _Profile:
    verification: str
    window: SlidingWindow


class SenderProfiles:
    def __init__(self, store: DispatchStore, *, ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._profiles: dict[tuple[uuid.UUID, str], _Profile] = {}
        self._read_at = clock()
        self._reading: asyncio.Future[None] | None = None

    async def window_for(self, event: Recipient) -> SlidingWindow:
        """A new pacing window for the event's sender, seeded with its recent sends from the ledger (so a
        sender taken over in a rebalance keeps its pace). PermanentError ``sender_unknown`` without a row."""
        known = await self._store.sender_rate(event.org_id, event.sender)
        if known is None:  # the snapshot check saw it; it was deleted since
            raise PermanentError("sender_unknown", f"{event.sender} is not a sender of organisation {event.org_id}")
        window = SlidingWindow(known[1])
        for anchor, segments in await self._store.recent_sends(event.sender):
            window.record(anchor, segments)
        self._profiles[(event.org_id, event.sender)] = _Profile(known[0], window)
        return window

    async def verification(self, event: Recipient) -> str:
        """The sender's verification state, once every sender's row (and so its rate) has been read again
        if ``ttl_s`` has passed. One read at a time: every lane waits on the same one."""
        if self._clock() - self._read_at >= self._ttl_s:
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._read_all())
            await asyncio.shield(self._reading)
        profile = self._profiles.get((event.org_id, event.sender))
        return profile.verification if profile else "verified"  # no lane set up here (tests): Twilio's usual case

    async def _read_all(self) -> None:
        try:
            rows = await self._store.sender_rates(list(self._profiles))
            for key, (verification, rate) in rows.items():
                if (profile := self._profiles.get(key)) is not None:
                    profile.verification, profile.window.limit = verification, rate
            self._read_at = self._clock()
        finally:
            self._reading = None
