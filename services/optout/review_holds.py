"""Hold a doubtful reply for staff: a review row, and the number treated as revoked until they decide.

``hold_for_review(conn, holds)`` runs in the processor's transaction, after the replies are stored in
``inbound_messages``; idempotent (a retried webhook adds nothing). Staff decide in the API
(services/api/routes/revocations.py): a revocation is then applied as any other, "not a revocation"
lifts the hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import UUID

from libs.common.db import Connection, Queries
from libs.common.logging import get_logger

QUERIES: Final = Queries.load(Path(__file__).with_name("revocation.sql"))

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReviewHold:
    org_id: UUID
    message_sid: str
    scope: str | None  # the sender-scoped change, should staff decide it is a revocation
    matched: str
    language: str


async def hold_for_review(conn: Connection, holds: Sequence[ReviewHold]) -> int:
    """Queue the reviews and hold the numbers; returns how many reviews are new."""
    if not holds:
        return 0
    rows = await QUERIES.fetch(
        conn, "hold-for-review", org_ids=[h.org_id for h in holds], message_sids=[h.message_sid for h in holds],
        scopes=[h.scope for h in holds], matched=[h.matched for h in holds], languages=[h.language for h in holds],
    )
    if rows:
        log.info("revocation.review_queued", extra={"reviews": len(rows)})
    return len(rows)
