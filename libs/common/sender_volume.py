"""Volume caps of unverified toll-free senders, in PostgreSQL: the policy, and reserving segments under it.

The rules are ``sender_caps`` (pure); this module runs their SQL (``sender_volume.sql``). A reservation is
made in the caller's transaction, under the sender's row locks, so two sends never both take the last of
a cap, and a send that does not happen rolls its reservation back with its transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Final

from libs.common.db import Connection, Queries
from libs.common.sender_caps import CapPolicy, first_cap_reached, period_start

QUERIES: Final = Queries.load(Path(__file__).with_name("sender_volume.sql"))


async def cap_policy(conn: Connection, org_id: uuid.UUID, verification: str) -> CapPolicy | None:
    """The organisation's caps for senders in this verification state; None: no caps (such sends are refused)."""
    row = await QUERIES.fetchrow(conn, "cap-policy", org_id=org_id, verification=verification)
    return CapPolicy(**dict(row)) if row else None


async def reserve_volume(conn: Connection, sender: str, segments: int, limits: dict[str, int],
                         now: datetime) -> str | None:
    """Add ``segments`` to the sender's current periods unless a cap would pass; return that period."""
    periods = list(limits)
    starts = [period_start(p, now) for p in periods]
    await QUERIES.execute(conn, "ensure-volume", sender=sender, periods=periods, starts=starts)
    rows = await QUERIES.fetch(conn, "lock-volume", sender=sender, periods=periods, starts=starts)
    reached = first_cap_reached({r["period"]: r["segments"] for r in rows}, limits, segments)
    if reached is None:
        await QUERIES.execute(conn, "add-volume", sender=sender, periods=periods, starts=starts, segments=segments)
    return reached
