"""Everything the checks look at once the run is over, read in one place: rows, and the stand-in's counts."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg

from harness.dispatch import TwilioStandin
from tests.chaos.seeding import ChaosOrg

USAGE_COUNTERS = ("messages", "segments", "delivered", "failed", "dropped", "opted_out_failures", "opt_outs")


@dataclass
class Observed:
    texts: dict[str, list[dict[str, Any]]]  # the stand-in's outbound messages, by member number
    arrivals: list[dict[str, Any]]  # the stand-in's arrival log: sender, segments, accepted_at, sid
    ledger: list[asyncpg.Record]
    runs: dict[uuid.UUID, asyncpg.Record]
    campaign_states: dict[uuid.UUID, str]
    snapshot: dict[uuid.UUID, Counter[str]]  # run -> members by status ('queued') or exclusion reason
    queued: dict[uuid.UUID, set[uuid.UUID]]  # run -> recipient ids the audience queued
    usage_runs: dict[uuid.UUID, asyncpg.Record]
    usage_daily: dict[str, int]  # the organisation's days, summed
    opt_out_replies: dict[uuid.UUID, int]  # run -> recipients whose STOP the opt-out service linked to it
    webhooks: dict[str, int]  # webhook_requests by state
    held_statuses: int  # statuses the usage service still waits to match with a send-result
    unpublished_events: int  # event_outbox rows of the organisation not yet on Kafka

    def ledger_of(self, run_id: uuid.UUID) -> list[asyncpg.Record]:
        return [row for row in self.ledger if row["run_id"] == run_id]


async def unsettled(pool: asyncpg.Pool, org: ChaosOrg) -> dict[str, object]:
    """What has not yet reached the ledger and usage (empty once every run completed and every callback,
    result and opt-out was applied): {what: (have, want)}."""
    row = await pool.fetchrow(
        """SELECT
             (SELECT count(*) FROM campaign_runs WHERE org_id = $1 AND state <> 'completed') AS running,
             (SELECT count(*) FROM send_ledger WHERE org_id = $1 AND state = 'sent') AS sent,
             (SELECT count(*) FROM send_ledger WHERE org_id = $1 AND state = 'sent'
                AND twilio_status = 'delivered') AS delivered,
             (SELECT count(*) FROM send_ledger WHERE org_id = $1 AND state = 'suppressed') AS suppressed,
             (SELECT count(*) FROM webhook_requests WHERE org_id = $1 AND state = 'pending') AS webhooks,
             (SELECT count(DISTINCT (run_id, recipient_id)) FROM inbound_messages
                WHERE org_id = $1 AND kind = 'opt_out' AND run_id IS NOT NULL) AS replies,
             u.messages, u.delivered AS usage_delivered, u.dropped, u.opt_outs
           FROM (SELECT coalesce(sum(messages), 0) AS messages, coalesce(sum(delivered), 0) AS delivered,
                        coalesce(sum(dropped + opted_out_failures), 0) AS dropped,
                        coalesce(sum(opt_outs), 0) AS opt_outs
                 FROM usage_runs WHERE org_id = $1) u""", org.org_id)
    pairs = {
        "runs still running": (row["running"], 0),
        "webhooks pending": (row["webhooks"], 0),
        "ledger delivered": (row["delivered"], row["sent"]),
        "usage messages": (row["messages"], row["sent"]),
        "usage delivered": (row["usage_delivered"], row["sent"]),
        "usage dropped": (row["dropped"], row["suppressed"]),
        "usage opt-outs": (row["opt_outs"], row["replies"]),
    }
    return {what: pair for what, pair in pairs.items() if pair[0] != pair[1]}


async def observe(pool: asyncpg.Pool, standin: TwilioStandin, org: ChaosOrg) -> Observed:
    """What the organisation's senders sent (a stand-in may have served other organisations before) and
    what the database holds for it."""
    senders = {c.sender for c in org.campaigns}
    texts = {to: mine for to, messages in (await standin.messages_to()).items()
             if (mine := [m for m in messages if m["sender"] in senders])}
    arrivals = [a for a in await standin.arrivals() if a["sender"] in senders]
    async with pool.acquire() as conn:
        org_id = org.org_id
        ledger = await conn.fetch(
            """SELECT run_id, recipient_id, to_number, sender, state, segments, message_sid, twilio_status, error_code,
                      attempt, claimed_by, extract(epoch FROM claimed_at)::float8 AS claimed_at
               FROM send_ledger WHERE org_id = $1""", org_id)
        runs = {r["id"]: r for r in await conn.fetch("SELECT * FROM campaign_runs WHERE org_id = $1", org_id)}
        states = {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM campaigns WHERE org_id = $1",
                                                                 org_id)}
        snapshot: dict[uuid.UUID, Counter[str]] = {}
        queued: dict[uuid.UUID, set[uuid.UUID]] = {}
        for r in await conn.fetch("SELECT run_id, recipient_id, status, reason FROM run_recipients WHERE org_id = $1",
                                  org_id):
            snapshot.setdefault(r["run_id"], Counter())[r["reason"] or r["status"]] += 1
            if r["status"] == "queued":
                queued.setdefault(r["run_id"], set()).add(r["recipient_id"])
        usage_runs = {r["run_id"]: r for r in await conn.fetch("SELECT * FROM usage_runs WHERE org_id = $1", org_id)}
        daily = await conn.fetchrow(
            "SELECT " + ", ".join(f"coalesce(sum({c}), 0)::int AS {c}" for c in USAGE_COUNTERS)
            + " FROM usage_daily WHERE org_id = $1", org_id)
        replies = {r["run_id"]: r["n"] for r in await conn.fetch(
            """SELECT run_id, count(DISTINCT recipient_id) AS n FROM inbound_messages
               WHERE org_id = $1 AND kind = 'opt_out' AND run_id IS NOT NULL GROUP BY run_id""", org_id)}
        webhooks = {r["state"]: r["n"] for r in await conn.fetch(
            "SELECT state, count(*) AS n FROM webhook_requests WHERE org_id = $1 GROUP BY state", org_id)}
        held = await conn.fetchval("SELECT count(*) FROM usage_pending_statuses WHERE org_id = $1", org_id)
        unpublished = await conn.fetchval(
            "SELECT count(*) FROM event_outbox WHERE published_at IS NULL AND payload LIKE '%' || $1 || '%'",
            str(org_id))
    return Observed(texts, arrivals, list(ledger), runs, states, snapshot, queued, usage_runs, dict(daily), replies,
                    webhooks, held, unpublished)
