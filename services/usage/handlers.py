"""The usage consumer's handlers: send-results, statuses and opt-outs into the rollups, once each.

Each handler runs one transaction. It changes the message's stored facts, then adds
``contribution(after) - contribution(before)`` to the run's and the day's rollups (rules.py), and
raises any alert the new totals call for, all in that transaction. Idempotent by natural key, not
by event id (the dispatcher republishes a finished recipient's result under a new event id):

- a send-result is stored once per ``(run_id, recipient_id)``; a second one changes nothing;
- a status changes a message only when it ranks above the last one (``apply_status``), so a repeat
  or a late, lower status adds nothing. A status that beats its send-result (they travel on different
  topics) is held, and applied when the send-result arrives;
- an opt-out counts once per ``(run_id, recipient_id)``.

Raises PermanentError ``run_unknown`` / ``org_mismatch`` for a result that names no run of its
organisation, and ``ledger_mismatch`` for one the dispatcher's send ledger does not hold (its outcome and
SID for that recipient): both are dead-lettered. DependencyUnavailable when PostgreSQL is unreachable
(retried).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from libs.common.alerts import AlertKind, raise_alert
from libs.common.db import Connection, transaction
from libs.common.errors import DependencyUnavailable, PermanentError
from libs.common.events import ConsentChanged, MessageStatus, SendResult
from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE
from libs.common.phone import Normalised, normalise
from libs.common.pricing import PriceTable
from services.usage import db
from services.usage.conditions import OptedOutRule, run_dedupe_key, usage_threshold
from services.usage.rules import Contribution, Delta, MessageFacts, apply_status, contribution, difference

log = get_logger(__name__)

UNKNOWN_REGION = "ZZ"


@dataclass(frozen=True, slots=True)
class UsageDeps:
    pool: asyncpg.Pool
    base_url: str  # the dashboard, for the links in alerts
    prices: PriceTable = field(default_factory=PriceTable)
    opted_out_rule: OptedOutRule = field(default_factory=OptedOutRule)


@asynccontextmanager
async def _work(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """One transaction; a lost or busy database becomes DependencyUnavailable, so the record is retried."""
    try:
        async with transaction(pool) as conn:
            yield conn
    except POSTGRES_RETRYABLE as exc:
        raise DependencyUnavailable("database_unavailable", f"{type(exc).__name__}: {exc}") from exc


def region_of(e164: str) -> str:
    number = normalise(e164)
    return number.region if isinstance(number, Normalised) else UNKNOWN_REGION


async def record_send_result(event: SendResult, *, deps: UsageDeps) -> None:
    region = region_of(event.to)
    facts = MessageFacts(outcome=event.outcome, segments=event.segments, region=region,
                         unit_price=deps.prices.cost_for(region, 1), error_code=event.error_code)
    async with _work(deps.pool) as conn:
        if event.message_sid:
            await db.lock_sid(conn, event.message_sid)
        run = await db.run_for_usage(conn, event.run_id, event.occurred_at)
        if run is None:
            raise PermanentError("run_unknown", f"send-result for run {event.run_id}, which does not exist")
        if run.org_id != event.org_id:
            raise PermanentError("org_mismatch", f"run {event.run_id} is not organisation {event.org_id}'s")
        if not await db.ledger_matches(conn, event.run_id, event.recipient_id, event.org_id, event.outcome,
                                       event.message_sid):
            raise PermanentError("ledger_mismatch", f"the send ledger holds no {event.outcome} outcome of recipient "
                                                    f"{event.recipient_id} of run {event.run_id} with that SID")
        if not await db.insert_message(conn, event.run_id, event.recipient_id, run, event.message_sid, facts):
            log.info("send_result.duplicate", extra={"run_id": str(event.run_id), "event_id": str(event.event_id)})
            return
        stored = db.StoredMessage(event.run_id, event.recipient_id, run.org_id, run.campaign_id, run.day, run.test,
                                  facts)
        await count_new_message(conn, deps, stored, event.message_sid)


async def count_new_message(
    conn: Connection, deps: UsageDeps, stored: db.StoredMessage, message_sid: str | None
) -> None:
    """Add a message just stored to the rollups, with the statuses that arrived before it (held by SID).

    The caller holds the SID's lock (``db.lock_sid``) in this transaction.
    """
    facts = after = stored.facts
    if message_sid:
        for held in await db.take_held_statuses(conn, message_sid):
            if held.org_id != stored.org_id:  # a SID is one organisation's: a status naming another is dropped
                log.warning("status.org_mismatch", extra={"message_sid": message_sid,
                                                          "named_org_id": str(held.org_id)})
                continue
            after = apply_status(after, held.status, held.error_code, held.reported_price)
    if after != facts:
        await db.update_message_status(conn, stored, after)
    await _add(conn, deps, stored, difference(contribution(after), Contribution()))


async def record_status(event: MessageStatus, *, deps: UsageDeps) -> None:
    price = abs(event.price) if event.price is not None else None
    async with _work(deps.pool) as conn:
        await db.lock_sid(conn, event.message_sid)
        message = await db.message_by_sid(conn, event.message_sid)
        if message is None:
            await db.hold_status(conn, event.org_id, event.message_sid, event.status, event.error_code, price)
            log.info("status.held", extra={"message_sid": event.message_sid, "status": event.status})
            return
        if message.org_id != event.org_id:
            raise PermanentError("org_mismatch", f"message {event.message_sid} is not organisation {event.org_id}'s")
        after = apply_status(message.facts, event.status, event.error_code, price)
        if after == message.facts:
            return
        await db.update_message_status(conn, message, after)
        await _add(conn, deps, message, difference(contribution(after), contribution(message.facts)))


async def record_consent(event: ConsentChanged, *, deps: UsageDeps) -> None:
    """A STOP in reply to a run's text counts as an opt-out caused by that run (once per recipient)."""
    if event.action != "opt_out" or event.source != "keyword" or not event.message_sid:
        return
    async with _work(deps.pool) as conn:
        link = await db.reply_link(conn, event.org_id, event.message_sid, event.phone)
        if link is None:
            return  # a STOP that answers no campaign text
        run_id, recipient_id = link
        run = await db.run_for_usage(conn, run_id, event.occurred_at)
        if run is None or not await db.count_optout(conn, run_id, recipient_id, run.org_id, run.day):
            return
        await db.add_delta(conn, run_id=run_id, org_id=run.org_id, campaign_id=run.campaign_id, day=run.day,
                           test=run.test, delta=Delta({"opt_outs": 1}))


async def _add(conn: Connection, deps: UsageDeps, message: db.StoredMessage, delta: Delta) -> None:
    if not delta:
        return
    totals = await db.add_delta(conn, run_id=message.run_id, org_id=message.org_id, campaign_id=message.campaign_id,
                                day=message.day, test=message.test, delta=delta)
    if delta.get("segments") and not message.test:
        await _check_allowance(conn, deps, message)
    if totals is None:  # a one-off text: no run to alert about
        return
    if delta.get("opted_out_failures") and deps.opted_out_rule.fires(totals["opted_out_failures"], totals["failed"]):
        kind = AlertKind.OPTED_OUT_FAILURES
        await raise_alert(conn, message.org_id, kind, run_dedupe_key(message.run_id, kind),
                          {"opted_out_failures": totals["opted_out_failures"], "failed": totals["failed"],
                           "failed_fees": totals["failed_fees"]},
                          base_url=deps.base_url, run_id=message.run_id)


async def _check_allowance(conn: Connection, deps: UsageDeps, message: db.StoredMessage) -> None:
    """Alert when the month's segments reach 80 % or 100 % of the subscription's allowance; once a month each."""
    month = await db.month_usage(conn, message.org_id, message.day)
    kind = usage_threshold(month.used, month.allowance) if month else None
    if month is None or kind is None:
        return
    context: dict[str, object] = {"month": month.month, "used": month.used, "allowance": month.allowance,
                                  "plan": month.plan, "cost": Decimal(month.cost)}
    await raise_alert(conn, message.org_id, kind, f"{kind.value}:{month.month_key}", context, base_url=deps.base_url)
