"""The usage service's only SQL: named queries from queries.sql, wrapped in typed calls.

Every call takes the caller's connection: the handlers run each event in one transaction, so a
message's new state, its rollup deltas and any alert it raises commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from libs.common import alerts
from libs.common.db import Connection, Queries
from services.usage.rules import Delta, MessageFacts

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))

# Rollup columns and the Contribution field each one adds up.
_ROLLUP_COLUMNS = {
    "messages": "messages", "segments": "segments", "delivered": "delivered", "undelivered": "undelivered",
    "failed": "failed", "dropped": "dropped", "opted_out_failures": "opted_out_failures", "opt_outs": "opt_outs",
    "unpriced_segments": "unpriced_segments", "segment_cost": "segment_cost", "failed_fees": "failed_fee",
    "pumping_fees": "pumping_fee", "reported_cost": "reported_cost", "settled_messages": "settled_messages",
    "settled_estimate": "settled_estimate", "settled_price": "settled_price",
}
_MONEY = frozenset({"segment_cost", "failed_fees", "pumping_fees", "reported_cost", "settled_estimate",
                    "settled_price"})


@dataclass(frozen=True, slots=True)
class RunInfo:
    org_id: UUID
    campaign_id: UUID
    day: date
    test: bool


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A usage_messages row: where it is counted, and its facts. A run recipient's text has ``run_id``,
    ``recipient_id`` and ``campaign_id``; a one-off text (services/usage/one_off_usage.py) ``one_off_id``."""

    run_id: UUID | None
    recipient_id: UUID | None
    org_id: UUID
    campaign_id: UUID | None
    day: date
    test: bool
    facts: MessageFacts
    one_off_id: int | None = None


@dataclass(frozen=True, slots=True)
class HeldStatus:
    org_id: UUID
    status: str
    error_code: int | None
    reported_price: Decimal | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class MonthUsage:
    plan: str
    allowance: int | None
    used: int
    cost: Decimal
    month: str  # "March 2026"
    month_key: str  # "2026-03"


async def check(conn: Connection) -> None:
    """Prepare every statement (ours and raise_alert's), so a broken query fails at boot."""
    await QUERIES.check(conn)
    await alerts.QUERIES.check(conn)


# ---------------------------------------------------------------------------------------------
# Messages


async def run_for_usage(conn: Connection, run_id: UUID, occurred_at: datetime) -> RunInfo | None:
    row = await QUERIES.fetchrow(conn, "run-for-usage", run_id=run_id, occurred_at=occurred_at)
    return RunInfo(row["org_id"], row["campaign_id"], row["day"], row["test"]) if row else None


async def ledger_matches(conn: Connection, run_id: UUID, recipient_id: UUID, org_id: UUID,
                         outcome: str, message_sid: str | None) -> bool:
    matches: bool = await QUERIES.fetchval(conn, "ledger-matches", run_id=run_id, recipient_id=recipient_id,
                                           org_id=org_id, outcome=outcome, message_sid=message_sid)
    return matches


async def lock_sid(conn: Connection, message_sid: str) -> None:
    await QUERIES.execute(conn, "lock-sid", message_sid=message_sid)


async def insert_message(conn: Connection, run_id: UUID, recipient_id: UUID, run: RunInfo,
                         message_sid: str | None, facts: MessageFacts) -> bool:
    """Store a recipient's first send-result; False when one was stored before (a redelivery)."""
    inserted = await QUERIES.fetchval(
        conn, "insert-message", run_id=run_id, recipient_id=recipient_id, org_id=run.org_id, message_sid=message_sid,
        day=run.day, test=run.test, region=facts.region, unit_price=facts.unit_price, outcome=facts.outcome,
        segments=facts.segments, error_code=facts.error_code,
    )
    return inserted is not None


async def message_by_sid(conn: Connection, message_sid: str) -> StoredMessage | None:
    """The message with this SID, locked for the rest of the transaction."""
    row = await QUERIES.fetchrow(conn, "message-by-sid", message_sid=message_sid)
    if row is None:
        return None
    facts = MessageFacts(outcome=row["outcome"], segments=row["segments"], region=row["region"],
                         unit_price=row["unit_price"], status=row["status"], error_code=row["error_code"],
                         reported_price=row["reported_price"], pumping_fee=row["pumping_fee"])
    return StoredMessage(row["run_id"], row["recipient_id"], row["org_id"], row["campaign_id"], row["day"],
                         row["test"], facts, row["one_off_id"])


async def update_message_status(conn: Connection, message: StoredMessage, facts: MessageFacts) -> None:
    await QUERIES.execute(conn, "update-message-status", run_id=message.run_id, recipient_id=message.recipient_id,
                          one_off_id=message.one_off_id, status=facts.status, error_code=facts.error_code,
                          reported_price=facts.reported_price, pumping_fee=facts.pumping_fee)


async def hold_status(conn: Connection, org_id: UUID, message_sid: str, status: str,
                      error_code: int | None, price: Decimal | None) -> None:
    await QUERIES.execute(conn, "hold-status", message_sid=message_sid, status=status, error_code=error_code,
                          reported_price=price, org_id=org_id)


async def take_held_statuses(conn: Connection, message_sid: str) -> list[HeldStatus]:
    """Remove and return the statuses held for this SID, in the order they arrived."""
    rows = await QUERIES.fetch(conn, "take-held-statuses", message_sid=message_sid)
    held = [HeldStatus(r["org_id"], r["status"], r["error_code"], r["reported_price"], r["received_at"])
            for r in rows]
    return sorted(held, key=lambda h: h.received_at)


# ---------------------------------------------------------------------------------------------
# Rollups


async def add_delta(conn: Connection, *, run_id: UUID | None, org_id: UUID, campaign_id: UUID | None, day: date,
                    test: bool, delta: Delta) -> asyncpg.Record | None:
    """Add ``delta`` to the run's and the day's rollups and error counts; returns the run's new totals.

    A one-off text (no ``run_id``) adds to the day only, and returns None.
    """
    values: dict[str, Any] = {
        column: Decimal(delta.get(name)) if column in _MONEY else delta.get(name)
        for column, name in _ROLLUP_COLUMNS.items()
    }
    run = None
    if run_id is not None:
        run = await QUERIES.fetchrow(conn, "add-to-run", run_id=run_id, org_id=org_id, campaign_id=campaign_id,
                                     test=test, **values)
        assert run is not None  # an upsert that returns its row
    await QUERIES.execute(conn, "add-to-day", org_id=org_id, day=day, test=test, **values)
    if delta.errors:
        codes, counts = list(delta.errors), list(delta.errors.values())
        if run_id is not None:
            await QUERIES.execute(conn, "add-run-errors", run_id=run_id, codes=codes, counts=counts)
        await QUERIES.execute(conn, "add-day-errors", org_id=org_id, day=day, test=test, codes=codes, counts=counts)
    return run


async def month_usage(conn: Connection, org_id: UUID, day: date) -> MonthUsage | None:
    """The month's non-test usage against the subscription; None without a subscription."""
    row = await QUERIES.fetchrow(conn, "month-usage", org_id=org_id, day=day)
    if row is None:
        return None
    return MonthUsage(row["plan"], row["allowance"], row["used"], row["cost"], row["month"], row["month_key"])


async def reply_link(conn: Connection, org_id: UUID, message_sid: str, phone: str) -> tuple[UUID, UUID] | None:
    row = await QUERIES.fetchrow(conn, "reply-link", org_id=org_id, message_sid=message_sid, phone=phone)
    return (row["run_id"], row["recipient_id"]) if row else None


async def count_optout(conn: Connection, run_id: UUID, recipient_id: UUID, org_id: UUID, day: date) -> bool:
    """Record that this recipient of the run opted out; False when it was counted before."""
    return await QUERIES.fetchval(conn, "count-optout", run_id=run_id, recipient_id=recipient_id, org_id=org_id,
                                  day=day) is not None


# ---------------------------------------------------------------------------------------------
# Alert watcher


async def runs_to_alert(conn: Connection, *, horizon_days: int, reminder_s: float,
                        limit: int) -> list[asyncpg.Record]:
    return await QUERIES.fetch(conn, "runs-to-alert", horizon_days=horizon_days, reminder_s=float(reminder_s),
                               limit=limit)


async def run_top_errors(conn: Connection, run_id: UUID, limit: int = 3) -> list[dict[str, int]]:
    rows = await QUERIES.fetch(conn, "run-top-errors", run_id=run_id, limit=limit)
    return [{"code": r["code"], "count": r["count"]} for r in rows]


async def mark_run(conn: Connection, run_id: UUID, state: str, state_reason: str | None,
                   kind: str | None) -> None:
    await QUERIES.execute(conn, "mark-run", run_id=run_id, state=state, state_reason=state_reason, kind=kind)


async def stuck_writebacks(conn: Connection, *, stuck_s: float) -> list[asyncpg.Record]:
    return await QUERIES.fetch(conn, "stuck-writebacks", stuck_s=float(stuck_s))


async def failing_webhook_signatures(conn: Connection, *, window_s: float,
                                     threshold: int) -> list[asyncpg.Record]:
    return await QUERIES.fetch(conn, "failing-webhook-signatures", window_s=float(window_s), threshold=threshold)


# ---------------------------------------------------------------------------------------------
# Alert mailer


async def claim_alerts(conn: Connection, *, limit: int, lease_s: float) -> list[asyncpg.Record]:
    return await QUERIES.fetch(conn, "claim-alerts", limit=limit, lease_s=float(lease_s))


async def alert_sent(conn: Connection, alert_id: int, note: str | None = None) -> None:
    await QUERIES.execute(conn, "alert-sent", id=alert_id, note=note)


async def alert_retry(conn: Connection, alert_id: int, *, error: str, delay_s: float) -> None:
    await QUERIES.execute(conn, "alert-retry", id=alert_id, error=error[:2000], delay_s=float(delay_s))


async def alert_failed(conn: Connection, alert_id: int, *, error: str) -> None:
    await QUERIES.execute(conn, "alert-failed", id=alert_id, error=error[:2000])
