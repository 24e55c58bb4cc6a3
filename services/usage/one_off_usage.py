"""One-off texts (staff replies, keyword answers, revocation confirmations; migration 0049) in usage and cost.

A campaign text reaches usage as a send-result event; a one-off text has no run, and its outcome is in
``one_off_texts``. Each pass takes the texts with an outcome not yet counted (``counted``, migration 0056),
stores each as a usage message of no run (``usage_messages.one_off_id``) and adds it to the organisation's
day, in one transaction: so one-off texts count in the month's segments, cost, failed-message fees and
allowance alerts exactly as a campaign's do, and Twilio's status callbacks and settled prices reach them by
message SID as they reach any message (``handlers.record_status``). They belong to no run or campaign.

    outcome (one_off_texts.state)              counted as
    sent                                       sent: segments and their price, then its statuses
    failed, after reaching Twilio              failed (a refusal at submission: no message, no fee)
    suppressed at send time                    dropped
    failed before any attempt (erased member)  dropped (cancelled)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from libs.common.db import Connection, Queries, transaction
from libs.common.logging import get_logger
from libs.common.polling import drain, poll_forever
from services.usage import db
from services.usage.handlers import UNKNOWN_REGION, UsageDeps, count_new_message, region_of
from services.usage.rules import MessageFacts, Outcome

log = get_logger(__name__)

QUERIES: Final = Queries.load(Path(__file__).with_name("one_off_usage.sql"))


@dataclass(frozen=True, slots=True)
class OneOffUsageTuning:
    poll_s: float = 2.0
    batch: int = 200


def outcome_of(state: str, *, attempted: bool) -> Outcome:
    """How a one-off text's final state counts (the table above)."""
    if state == "sent":
        return "sent"
    if state == "suppressed":
        return "suppressed"
    return "failed" if attempted else "cancelled"


class OneOffUsage:
    def __init__(self, deps: UsageDeps, tuning: OneOffUsageTuning = OneOffUsageTuning()) -> None:
        self._deps = deps
        self._tuning = tuning

    async def run(self) -> None:
        """Count until cancelled; a database outage only delays it (the texts stay uncounted)."""
        await poll_forever(lambda: drain(self.run_once, self._tuning.batch), stalled="one_off_usage.stalled",
                           poll_s=self._tuning.poll_s)

    async def run_once(self) -> int:
        """Count one batch; returns how many texts it took."""
        async with transaction(self._deps.pool) as conn:
            texts = await QUERIES.fetch(conn, "uncounted-one-offs", batch=self._tuning.batch)
            for text in texts:
                await self._count(conn, text)
            if texts:
                await QUERIES.execute(conn, "mark-counted", ids=[t["id"] for t in texts])
        if texts:
            log.info("one_off_usage.counted", extra={"texts": len(texts)})
        return len(texts)

    async def _count(self, conn: Connection, text: asyncpg.Record) -> None:
        region = region_of(text["phone"]) if text["phone"] else UNKNOWN_REGION  # no number: the member was erased
        outcome = outcome_of(text["state"], attempted=text["attempted"])
        facts = MessageFacts(outcome=outcome, segments=text["segments"] if outcome == "sent" else 0, region=region,
                             unit_price=self._deps.prices.cost_for(region, 1), error_code=text["error_code"])
        if text["message_sid"]:
            await db.lock_sid(conn, text["message_sid"])
        inserted = await QUERIES.fetchval(
            conn, "insert-one-off-message", one_off_id=text["id"], org_id=text["org_id"],
            message_sid=text["message_sid"], day=text["day"], test=text["test"], region=region,
            unit_price=facts.unit_price, outcome=facts.outcome, segments=facts.segments, error_code=facts.error_code)
        if inserted is None:
            return  # counted before (the flag is set again with this batch)
        stored = db.StoredMessage(None, None, text["org_id"], None, text["day"], text["test"], facts, text["id"])
        await count_new_message(conn, self._deps, stored, text["message_sid"])
