"""The send plan of a previewed audience: who is sent at once, held until when, not sent, and when it ends.

The organisation's window and marketing cap (``send_rules.sql``), the campaign's kind and hold limit, and
each sampled recipient's address state (as the audience service stores it in the snapshot) and marketing
texts in the cap's period (from the ledger, as the dispatcher counts them) go to
:func:`libs.common.send_plan.plan_sending`, which asks the dispatcher's own verdict for each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from uuid import UUID

import asyncpg

from libs.common.audience_rules import SnapshotRow
from libs.common.db import Connection, Queries
from libs.common.send_plan import PlannedRecipient, SendPlan, plan_sending
from libs.common.send_verdict import RunRules, marketing_cap_of, org_window_of
from services.api.uploads_db import Sender

__all__ = ["QUERIES", "plan_preview", "send_rules_row"]

QUERIES: Final = Queries.load(Path(__file__).with_name("send_rules.sql"))
# Stands for the campaign in the verdict: a campaign not yet run has sent nobody a text on its subject.
_NEW_CAMPAIGN: Final = uuid.UUID(int=0)


async def send_rules_row(conn: Connection, org_id: UUID) -> asyncpg.Record:
    row = await QUERIES.fetchrow(conn, "send-rules", org_id=org_id)
    assert row is not None, "the caller's organisation exists"
    return row


async def plan_preview(pool: asyncpg.Pool, org_id: UUID, rows: Sequence[SnapshotRow], sender: Sender | None, *,
                       start: datetime, transactional: bool, hold_limit_s: int) -> SendPlan:
    """The plan of a run of ``rows``' recipients starting at ``start`` (aware)."""
    recipients = [row for row in rows if row.reason is None and row.e164 is not None]
    async with pool.acquire() as conn:
        org = await send_rules_row(conn, org_id)
        cap = marketing_cap_of(org)
        marketing: dict[str, int] = {}
        if cap is not None and not transactional and recipients:
            found = await QUERIES.fetch(conn, "marketing-texts", org_id=org_id, now=start, days=cap[1],
                                        numbers=sorted({row.e164 for row in recipients if row.e164}))
            marketing = {r["to_number"]: r["texts"] for r in found}
    rules = RunRules(org["time_zone"], org_window_of(org), cap, transactional, _NEW_CAMPAIGN,
                     start + timedelta(seconds=hold_limit_s))
    address = sender.address if sender is not None else ""
    planned = [PlannedRecipient(row.e164, address, max(row.segments, 1), address_state=row.address_state,
                                marketing_sent=marketing.get(row.e164, 0))
               for row in recipients if row.e164 is not None]
    rates = {address: sender.segments_per_second} if sender is not None else {}
    return plan_sending(planned, rules, start, rates)
