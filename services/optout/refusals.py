"""Webhooks refused for a bad signature, counted per organisation and minute for the usage service's alert.

``count`` is called on the request path and only adds to memory; ``run`` adds the counts to
``webhook_signature_refusals`` every ``flush_s`` (one upsert for all organisations), so a flood of forged
requests costs no extra write per request. Counts not yet written when the process dies are lost: the
alert needs a trend, not every request. A flush that fails keeps its counts for the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from libs.common.logging import get_logger
from libs.common.polling import poll_forever
from services.optout.db import OptoutDb

log = get_logger(__name__)


class SignatureRefusals:
    def __init__(self, pool: asyncpg.Pool, db: OptoutDb, *, flush_s: float = 5.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._pool = pool
        self._db = db
        self._flush_s = flush_s
        self._clock = clock
        self._pending: dict[tuple[UUID, datetime], tuple[int, str]] = {}

    def count(self, org_id: UUID, url: str) -> None:
        minute = self._clock().replace(second=0, microsecond=0)
        refusals, _ = self._pending.get((org_id, minute), (0, url))
        self._pending[(org_id, minute)] = (refusals + 1, url)

    async def run(self) -> None:
        await poll_forever(self.flush, stalled="signature_refusals.flush_stalled", poll_s=self._flush_s)

    async def flush(self) -> int:
        """Write the counts so far; returns how many (organisation, minute) rows were written."""
        if not self._pending:
            return 0
        taken, self._pending = self._pending, {}
        try:
            async with self._pool.acquire() as conn:
                await self._db.add_signature_refusals(
                    conn, [(org_id, minute, n, url) for (org_id, minute), (n, url) in taken.items()])
        except BaseException:
            for key, (n, url) in taken.items():  # kept for the next flush
                refusals, _ = self._pending.get(key, (0, url))
                self._pending[key] = (refusals + n, url)
            raise
        log.info("signature_refusals.recorded", extra={"organisations": len({o for o, _ in taken}),
                                                       "refusals": sum(n for n, _ in taken.values())})
        return len(taken)
