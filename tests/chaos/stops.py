"""Members replying STOP in the middle of the run, through the Twilio stand-in and the opt-out service.

``reply_stop`` records, per member, two times on the machine's one clock: ``replied_at`` (just before
the member's text reached the stand-in, which blocks the number for that sender at once, as Twilio does)
and ``suppressed_by`` (when this test first saw the organisation-wide suppression row, so it had been
committed by then). The checks compare them with the ledger's claim and the stand-in's arrival times.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

import asyncpg

from harness.dispatch import TwilioStandin
from libs.common.outages import is_outage
from tests.chaos.seeding import ChaosCampaign, ChaosOrg, Member


@dataclass
class Stop:
    phone: str
    sender: str
    run_id: uuid.UUID
    replied_at: float
    suppressed_by: float | None = None
    webhook: str = ""  # what the opt-out service answered the stand-in's webhook


async def pick_stops(pool: asyncpg.Pool, org: ChaosOrg, rng: random.Random, *, texted: int, waiting: int,
                     taken: set[str]) -> list[tuple[ChaosCampaign, Member]]:
    """Per campaign, ``texted`` members already sent to and ``waiting`` members not yet claimed.

    The waiting ones are the last one-segment members in list order: a sender's lane sends the largest
    texts that fit its window first, so these are the last of its run to go.
    """
    rows = await pool.fetch("SELECT run_id, to_number, state FROM send_ledger WHERE org_id = $1", org.org_id)
    claimed = {(r["run_id"], r["to_number"]) for r in rows}
    sent = {(r["run_id"], r["to_number"]) for r in rows if r["state"] == "sent"}
    picks = []
    for campaign in org.campaigns:
        free = [m for m in campaign.members if m.phone not in taken]
        done = [m for m in free if (campaign.run_id, m.phone) in sent]
        queued = [m for m in free if (campaign.run_id, m.phone) not in claimed and m.segments == 1]
        picks += [(campaign, m) for m in rng.sample(done, min(texted, len(done)))]
        picks += [(campaign, m) for m in queued[-waiting:]]
    return picks


async def reply_stop(standin: TwilioStandin, pool: asyncpg.Pool, org: ChaosOrg,
                     picks: list[tuple[ChaosCampaign, Member]], *, timeout: float = 15.0) -> list[Stop]:
    """Each picked member texts STOP to their campaign's sender; returns once every suppression is seen (or
    after ``timeout``), waiting for PostgreSQL if it is away."""

    async def one(campaign: ChaosCampaign, member: Member) -> Stop:
        stop = Stop(member.phone, campaign.sender, campaign.run_id, time.time())
        webhook = (await standin.reply(member.phone, campaign.sender, "STOP")).get("webhook") or {}
        stop.webhook = str(webhook.get("http_status") or webhook.get("error"))
        return stop

    stops = list(await asyncio.gather(*(one(c, m) for c, m in picks)))
    unseen = {s.phone: s for s in stops}
    deadline = time.monotonic() + timeout
    while unseen and time.monotonic() < deadline:
        try:
            rows = await pool.fetch(
                "SELECT phone FROM suppressions WHERE org_id = $1 AND scope = '' AND phone = ANY($2::text[])",
                org.org_id, list(unseen))
        except Exception as exc:  # PostgreSQL is being restarted: the STOPs are seen once it is back
            if not is_outage(exc):
                raise
            await asyncio.sleep(0.1)
            continue
        seen_at = time.time()
        for row in rows:
            unseen.pop(row["phone"]).suppressed_by = seen_at
        await asyncio.sleep(0.01)
    return stops
