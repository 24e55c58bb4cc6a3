"""Queue the one confirmation text a revocation may get (no marketing; the organisation's own wording).

    queued = await queue(conn, [(org_id, "SM...")])  # ids of the confirmations queued now

Called in the transaction that records the revocation, by the opt-out service (a member's free-text
revocation) and the API (staff deciding a doubtful reply is one). Idempotent: a revocation gets at most
one, however often it is applied (migration 0042, ``UNIQUE (consent_id)``). The rule of who gets one is
the statement's (revocation_confirmations.sql).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final
from uuid import UUID

from libs.common.db import Connection, Queries

QUERIES: Final = Queries.load(Path(__file__).with_name("revocation_confirmations.sql"))


async def queue(conn: Connection, revocations: Sequence[tuple[UUID, str]]) -> list[int]:
    """(org_id, inbound message SID) of revocations just recorded -> the confirmation ids queued now."""
    if not revocations:
        return []
    rows = await QUERIES.fetch(conn, "queue-confirmations", org_ids=[o for o, _ in revocations],
                               message_sids=[sid for _, sid in revocations])
    return [r["id"] for r in rows]
