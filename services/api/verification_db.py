"""SQL for senders' toll-free verification (``verification.sql``, migration 0051)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from libs.common.db import Connection, Queries
from services.api.tollfree_verifications import VerificationStatus

QUERIES = Queries.load(Path(__file__).with_name("verification.sql"))

Row = dict[str, Any]


async def sender(conn: Connection, org_id: UUID, sender_id: UUID) -> Row | None:
    record = await QUERIES.fetchrow(conn, "sender", org_id=org_id, sender_id=sender_id)
    return None if record is None else dict(record)


async def verification(conn: Connection, sender_id: UUID) -> Row | None:
    record = await QUERIES.fetchrow(conn, "verification", sender_id=sender_id)
    if record is None:
        return None
    row = dict(record)
    row["rejection_reasons"] = json.loads(row["rejection_reasons"])
    row["submitted"] = json.loads(row["submitted"]) if row["submitted"] is not None else None
    return row


async def last_submitted(conn: Connection, org_id: UUID) -> Row | None:
    value = await QUERIES.fetchval(conn, "last-submitted", org_id=org_id)
    return None if value is None else dict(json.loads(value))


async def save(conn: Connection, org_id: UUID, sender_id: UUID, status: VerificationStatus,
               submitted: Row | None = None) -> None:
    """Twilio's answer (and the form just submitted, if any); the sender's sending state follows it."""
    await QUERIES.execute(
        conn, "save-verification", sender_id=sender_id, org_id=org_id, verification_sid=status.verification_sid,
        status=status.status, rejection_reason=status.rejection_reason,
        rejection_reasons=json.dumps(status.rejection_reasons, ensure_ascii=False), error_code=status.error_code,
        edit_allowed=status.edit_allowed, edit_expiration=status.edit_expiration,
        submitted=None if submitted is None else json.dumps(submitted, ensure_ascii=False))
    await QUERIES.execute(conn, "set-sender-state", org_id=org_id, sender_id=sender_id,
                          verification=status.sender_state)


async def due_for_refresh(conn: Connection, max_age_s: float, limit: int) -> list[tuple[UUID, UUID]]:
    rows = await QUERIES.fetch(conn, "due-for-refresh", max_age_s=max_age_s, limit=limit)
    return [(r["org_id"], r["sender_id"]) for r in rows]
