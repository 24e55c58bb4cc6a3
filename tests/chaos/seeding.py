"""The chaos campaign's data: one organisation, four senders, and one list campaign per sender.

The audience service resolves one sender per run (the campaign's), so "2,000 recipients over four
senders" is four campaigns of 500 eligible members each, all due together. Each list also holds four
members who must get nothing: a number suppressed before the run, an invalid number, no number, and a
second member on an eligible member's number (one text per number per run).

Bodies are sized so the first name decides the segments: a short ASCII name gives 1 segment, a long one
pushes GSM-7 past 160 characters (2), and a name outside GSM-7 makes the body UCS-2 (3).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from harness import factories
from libs.common.db import Connection
from libs.common.events import CampaignDue
from libs.common.phone import Normalised, normalise
from standins.twilio.config import TwilioConfig

SENDERS = ("+18885550130", "+18885550131", "+18885550132", "+18885550133")
# Segments per second per sender, in senders.segments_per_second and at the stand-in. Twilio's toll-free
# default is 3; at 3, 2,000 members would take minutes, so the suite raises it and checks this limit.
RATE = 30
PER_SENDER = 500
BODY = ("Hi {{first_name}}, renewals for the Riverside chapter open today. Renew by Friday 30 June to keep "
        "your member rate and a seat at the AGM. Reply STOP to opt out.")
ONE_SEGMENT = ("Al", "Bea", "Carl", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivan", "June", "Kit", "Lou")
TWO_SEGMENTS = ("Anne-Marguerite", "Maximiliana-Rose", "Christopher-John", "Alexandria-Grace")
THREE_SEGMENTS = ("Zoë", "Siobhán", "Łukasz", "Dvořák")
_AREA_CODES = ("212", "305", "312", "415", "503", "512", "617", "702", "206", "404")
# What the audience service must exclude from each list, by its snapshot reason.
EXCLUDED = {"opted_out": 1, "invalid_number": 1, "missing_mobile": 1, "duplicate_number": 1}


@dataclass(frozen=True)
class Member:
    member_id: str
    phone: str  # E.164
    first_name: str

    @property
    def segments(self) -> int:
        return 3 if self.first_name in THREE_SEGMENTS else 2 if self.first_name in TWO_SEGMENTS else 1


@dataclass
class ChaosCampaign:
    sender: str
    campaign_id: uuid.UUID
    run_id: uuid.UUID
    members: list[Member]  # the eligible ones, in snapshot order

    def due(self, org_id: uuid.UUID) -> CampaignDue:
        return CampaignDue(org_id=org_id, campaign_id=self.campaign_id, run_id=self.run_id,
                           scheduled_for=datetime.now(UTC))


@dataclass
class ChaosOrg:
    org_id: uuid.UUID
    campaigns: list[ChaosCampaign]
    never_texted: set[str] = field(default_factory=set)  # suppressed before the run

    def campaign_of(self, run_id: uuid.UUID) -> ChaosCampaign:
        return next(c for c in self.campaigns if c.run_id == run_id)


def phone_numbers(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct US numbers that the platform's own normaliser accepts."""
    numbers: set[str] = set()
    while len(numbers) < count:
        candidate = f"+1{rng.choice(_AREA_CODES)}{rng.randrange(200, 999)}{rng.randrange(10_000):04d}"
        checked = normalise(candidate, "+1")
        if isinstance(checked, Normalised) and checked.region == "US":
            numbers.add(checked.e164)
    return sorted(numbers, key=lambda _: rng.random())


def first_name(rng: random.Random) -> str:
    roll = rng.random()
    pool = ONE_SEGMENT if roll < 0.7 else TWO_SEGMENTS if roll < 0.85 else THREE_SEGMENTS
    return rng.choice(pool)


async def seed_org(pool: asyncpg.Pool, twilio: TwilioConfig, webhook_base_url: str, rng: random.Random, *,
                   senders: tuple[str, ...] = SENDERS, per_sender: int = PER_SENDER, rate: int = RATE,
                   member_ids: list[str] | None = None, start_in_s: float = 0.0) -> ChaosOrg:
    """Everything the run needs, committed: account, senders, lists, campaigns and their pending runs.

    ``member_ids`` (``per_sender`` for each sender, in order) are the eligible members' iMIS ids; by
    default they are numbered per list. The runs fall due ``start_in_s`` from now.
    """
    numbers = phone_numbers(len(senders) * (per_sender + 1), rng)
    async with pool.acquire() as conn, conn.transaction():
        org_id = await factories.make_org(conn, slug=factories.new_slug("chaos"), name="Chaos")
        await factories.make_standin_account(conn, org_id, twilio, webhook_base_url=webhook_base_url)
        org = ChaosOrg(org_id, [])
        for index, sender in enumerate(senders):
            mine = numbers[index * (per_sender + 1):(index + 1) * (per_sender + 1)]
            base = 100_000 * (index + 1)  # numeric ids: the snapshot keeps list order, the lowest id keeps a number
            ids = (member_ids[index * per_sender:(index + 1) * per_sender] if member_ids is not None
                   else [str(base + i) for i in range(per_sender)])
            org.campaigns.append(await _seed_campaign(conn, org, index, sender, mine, ids, rate, start_in_s, rng))
    return org


async def _seed_campaign(conn: Connection, org: ChaosOrg, index: int, sender: str, numbers: list[str],
                         member_ids: list[str], rate: int, start_in_s: float, rng: random.Random) -> ChaosCampaign:
    sender_id = await factories.make_sender(conn, org.org_id, sender, segments_per_second=rate)
    list_id = await conn.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, $2) RETURNING id",
                                  org.org_id, f"Chapter {index}")
    base = 100_000 * (index + 1)
    members = [Member(member_id, numbers[i], first_name(rng)) for i, member_id in enumerate(member_ids)]
    suppressed = numbers[len(members)]
    entries = [(m.member_id, m.phone, {"first_name": m.first_name}) for m in members]
    entries += [
        (str(base + 90_001), suppressed, {"first_name": "Al"}),
        (str(base + 90_002), "555-01", {"first_name": "Al"}),
        (str(base + 90_003), None, {"first_name": "Al"}),
        (str(base + 90_004), members[0].phone, {"first_name": "Al"}),  # shares the first member's number
    ]
    await conn.executemany(
        "INSERT INTO member_list_entries (list_id, member_id, mobile, merge_values) VALUES ($1, $2, $3, $4::jsonb)",
        [(list_id, member_id, mobile, json.dumps(values)) for member_id, mobile, values in entries])
    await conn.execute("INSERT INTO suppressions (org_id, phone, scope, source) VALUES ($1, $2, '', 'import')",
                       org.org_id, suppressed)
    org.never_texted.add(suppressed)
    campaign_id = await factories.make_campaign(conn, org.org_id, name=f"Renewals {index}", body=BODY,
                                                audience={"kind": "list", "list_id": str(list_id)},
                                                sender_id=sender_id, state="sending")
    run_id = await factories.make_run(conn, org.org_id, campaign_id,
                                      occurrence_at=datetime.now(UTC) + timedelta(seconds=start_in_s))
    return ChaosCampaign(sender, campaign_id, run_id, members)
