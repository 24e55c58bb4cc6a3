"""Whether a recipient may be texted now: quiet hours in their local time, and the frequency caps.

Asked for each claimed entry just before its Twilio call (``delivery.py``). The answer is one of:

- ``send``: the window is open and no cap is reached;
- ``hold`` until the instant the window opens, when that is before the campaign's hold limit (the run's
  occurrence plus ``campaigns.hold_limit_s``): the ledger keeps the hold (``holds.py`` releases it);
- ``outside_window``: the window does not open before the hold limit;
- ``frequency_capped``: the number had the state's texts per 24 h on this campaign (Oklahoma, Maryland,
  Florida: 3), or, for a marketing campaign, the organisation's cap in its period.

The verdict is :func:`libs.common.send_verdict.decide` (the planner's too); the counts come from the
ledger, so every campaign and every dispatcher process is counted.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg

from libs.common.db import Connection, Queries
from libs.common.events import Recipient
from libs.common.quiet_hours import Hours, OrgWindow
from libs.common.send_verdict import SEND, RunRules, Verdict, decide

QUERIES = Queries.load(Path(__file__).with_name("send_rules.sql"))
RULES_TTL_S = 60.0


def rules_from_row(row: asyncpg.Record) -> RunRules:
    """The rules from a row of ``run-send-rules`` (organisations 0045, campaigns 0044)."""
    texts, days = row["marketing_cap_texts"], row["marketing_cap_days"]
    holidays: list[date] = list(row["holidays"] or [])
    window = OrgWindow(Hours(row["send_window_start_min"], row["send_window_end_min"]), frozenset(row["send_days"]),
                       frozenset(holidays))
    cap = (texts, days) if texts is not None and days is not None else None
    return RunRules(row["time_zone"], window, cap, row["transactional"], row["campaign_id"], row["hold_ends"])


class SendGate:
    """Reads what :func:`decide` needs: the run's rules (cached a minute) and the recipient's facts."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._rules: dict[uuid.UUID, tuple[float, RunRules | None]] = {}

    async def check(self, conn: Connection) -> None:
        await QUERIES.check(conn)

    async def run_rules(self, run_id: uuid.UUID) -> RunRules | None:
        cached = self._rules.get(run_id)
        if cached is None or time.monotonic() - cached[0] > RULES_TTL_S:
            if len(self._rules) > 10_000:
                self._rules.clear()
            async with self._pool.acquire() as conn:
                row = await QUERIES.fetchrow(conn, "run-send-rules", run_id=run_id)
            cached = (time.monotonic(), rules_from_row(row) if row is not None else None)
            self._rules[run_id] = cached
        return cached[1]

    async def verdict(self, event: Recipient, claimed_at: datetime, now: float) -> Verdict:
        rules = await self.run_rules(event.run_id)
        if rules is None:  # no run (deleted meanwhile): the delivery's own checks decide
            return SEND
        at = datetime.fromtimestamp(now, UTC)
        async with self._pool.acquire() as conn:
            facts = await QUERIES.fetchrow(
                conn, "recipient-send-facts", org_id=event.org_id, to_number=event.to, run_id=event.run_id,
                recipient_id=event.recipient_id, claimed_at=claimed_at, campaign_id=rules.campaign_id, now=at,
                cap_days=rules.marketing_cap[1] if rules.marketing_cap and not rules.transactional else 0)
        if facts is None:
            return SEND
        return decide(rules, at, e164=event.to, address_state=facts["address_state"],
                      address_time_zone=facts["address_time_zone"], marketing_sent=facts["marketing"],
                      subject_sent=facts["subject"])
