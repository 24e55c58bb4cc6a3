"""The API's only SQL: named statements from ``queries.sql``, wrapped as typed functions.

Functions take a connection; the route that calls them owns the transaction. jsonb columns are
selected as text and decoded here, so callers see dicts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from libs.common import run_reasons
from libs.common.db import Connection, Queries
from libs.common.run_reasons import RunReason

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))

Row = dict[str, Any]

_JSON_COLUMNS = ("audience", "schedule", "response")


def _row(record: asyncpg.Record | None) -> Row | None:
    if record is None:
        return None
    row = dict(record)
    for column in _JSON_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


# -- organisations and senders ----------------------------------------------------------------


async def sender_belongs_to(conn: Connection, org_id: UUID, sender_id: UUID) -> bool:
    return await QUERIES.fetchval(conn, "sender-of-org", org_id=org_id, sender_id=sender_id) is not None


async def has_default_sender(conn: Connection, org_id: UUID) -> bool:
    return await QUERIES.fetchval(conn, "default-sender", org_id=org_id) is not None


# -- campaigns --------------------------------------------------------------------------------


async def insert_campaign(conn: Connection, org_id: UUID, fields: Row, actor: str) -> UUID:
    campaign_id: UUID = await QUERIES.fetchval(conn, "insert-campaign", org_id=org_id, actor=actor,
                                               **_editable(fields))
    return campaign_id


async def duplicate_campaign(conn: Connection, org_id: UUID, campaign_id: UUID, actor: str) -> UUID | None:
    copy_id: UUID | None = await QUERIES.fetchval(conn, "duplicate-campaign", org_id=org_id,
                                                  campaign_id=campaign_id, actor=actor)
    return copy_id


async def get_campaign(conn: Connection, org_id: UUID, campaign_id: UUID) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "get-campaign", org_id=org_id, campaign_id=campaign_id))


async def lock_campaign(conn: Connection, org_id: UUID, campaign_id: UUID) -> Row | None:
    """The campaign's id, state and schedule, locked until the transaction ends; None if not found."""
    return _row(await QUERIES.fetchrow(conn, "lock-campaign", org_id=org_id, campaign_id=campaign_id))


async def list_campaigns(
    conn: Connection, org_id: UUID, states: Sequence[str] | None, limit: int, offset: int
) -> tuple[list[Row], int]:
    wanted = list(states) if states else None
    rows = await QUERIES.fetch(conn, "list-campaigns", org_id=org_id, states=wanted, limit=limit, offset=offset)
    total = await QUERIES.fetchval(conn, "count-campaigns", org_id=org_id, states=wanted)
    return [r for r in map(_row, rows) if r is not None], total


async def update_campaign(conn: Connection, campaign_id: UUID, fields: Row, actor: str) -> None:
    await QUERIES.execute(conn, "update-campaign", campaign_id=campaign_id, actor=actor, **_editable(fields))


async def delete_draft(conn: Connection, campaign_id: UUID) -> bool:
    return await QUERIES.execute(conn, "delete-campaign", campaign_id=campaign_id) == "DELETE 1"


async def set_state(conn: Connection, campaign_id: UUID, state: str, actor: str) -> None:
    await QUERIES.execute(conn, "set-campaign-state", campaign_id=campaign_id, state=state, actor=actor)


async def pin_approval(conn: Connection, campaign_id: UUID, fingerprint: str, actor: str) -> None:
    await QUERIES.execute(conn, "pin-approval", campaign_id=campaign_id, fingerprint=fingerprint, actor=actor)


async def clear_approval(conn: Connection, campaign_id: UUID, actor: str) -> None:
    await QUERIES.execute(conn, "clear-approval", campaign_id=campaign_id, actor=actor)


async def set_review_comment(conn: Connection, campaign_id: UUID, comment: str | None) -> None:
    await QUERIES.execute(conn, "set-review-comment", campaign_id=campaign_id, review_comment=comment)


async def set_schedule(
    conn: Connection, campaign_id: UUID, schedule: Row, next_occurrence_at: datetime | None,
    state: str, actor: str,
) -> None:
    await QUERIES.execute(conn, "set-schedule", campaign_id=campaign_id, schedule=_json(schedule),
                          next_occurrence_at=next_occurrence_at, state=state, actor=actor)


async def clear_next_occurrence(conn: Connection, campaign_id: UUID) -> None:
    await QUERIES.execute(conn, "clear-next-occurrence", campaign_id=campaign_id)


def _editable(fields: Row) -> Row:
    # :campaign_name, not :name: Queries.fetch(conn, name, **values) takes the query's name as ``name``.
    return {
        "campaign_name": fields["name"], "body": fields["body"], "audience": _json(fields["audience"] or {}),
        "sender_id": fields["sender_id"], "contact_email": fields["contact_email"],
        "segment_limit": fields["segment_limit"], "validity_period_s": fields["validity_period_s"],
        "send_when_late": fields["send_when_late"], "max_lateness_s": fields["max_lateness_s"],
        "track_links": fields.get("track_links", False), "transactional": fields.get("transactional", False),
        "hold_limit_s": fields.get("hold_limit_s", 86_400),
    }


# -- runs -------------------------------------------------------------------------------------


async def insert_send_now_run(conn: Connection, org_id: UUID, campaign_id: UUID, at: datetime) -> UUID:
    run_id: UUID = await QUERIES.fetchval(conn, "insert-send-now-run", org_id=org_id, campaign_id=campaign_id,
                                          occurrence_at=at)
    return run_id


async def cancel_unpublished_runs(conn: Connection, campaign_id: UUID, reason: RunReason) -> None:
    await QUERIES.execute(conn, "cancel-unpublished-runs", campaign_id=campaign_id, **run_reasons.columns(reason))


async def cancel_open_runs(conn: Connection, campaign_id: UUID, reason: RunReason) -> None:
    await QUERIES.execute(conn, "cancel-open-runs", campaign_id=campaign_id, **run_reasons.columns(reason))


async def pause_runs(conn: Connection, campaign_id: UUID) -> None:
    await QUERIES.execute(conn, "pause-runs", campaign_id=campaign_id)


async def resume_runs(conn: Connection, campaign_id: UUID) -> None:
    await QUERIES.execute(conn, "resume-runs", campaign_id=campaign_id)


async def get_run(conn: Connection, run_id: UUID) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "get-run", run_id=run_id))


async def list_runs(conn: Connection, campaign_id: UUID, limit: int) -> list[Row]:
    return [dict(r) for r in await QUERIES.fetch(conn, "list-runs", campaign_id=campaign_id, limit=limit)]


# -- audit and idempotency --------------------------------------------------------------------


async def record_audit(
    conn: Connection, *, org_id: UUID, campaign_id: UUID, actor: str, action: str,
    from_state: str | None = None, to_state: str | None = None, run_id: UUID | None = None,
    detail: Row | None = None,
) -> None:
    await QUERIES.execute(conn, "insert-audit", org_id=org_id, campaign_id=campaign_id, run_id=run_id, actor=actor,
                          action=action, from_state=from_state, to_state=to_state, detail=_json(detail or {}))


async def claim_idempotency_key(conn: Connection, org_id: UUID, key: str, request_hash: str) -> bool:
    """True if this request is the key's first (go ahead); False if it was used before (replay or refuse)."""
    return await QUERIES.fetchval(conn, "claim-idempotency-key", org_id=org_id, key=key,
                                  request_hash=request_hash) is not None


async def get_idempotency_key(conn: Connection, org_id: UUID, key: str) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "get-idempotency-key", org_id=org_id, key=key))


async def save_idempotent_response(
    conn: Connection, org_id: UUID, key: str, status_code: int, response: Any
) -> None:
    await QUERIES.execute(conn, "save-idempotent-response", org_id=org_id, key=key, status_code=status_code,
                          response=_json(response))
