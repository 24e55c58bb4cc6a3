"""A seeded, reproducible set of association members, as an AMS would hold them.

``generate(seed, count)`` draws members from one random stream in order, so member *i* depends only on the
seed and *i*: ``generate(s, 2_000)`` is exactly the first 2,000 of ``generate(s, 100_000)``. The full set
is built in a few seconds when a stand-in starts; nothing large is stored in the repository.

Addresses come from a second stream of the same seed (``standins/members/addresses.py``), one address per
member in order, so adding them changed no other field of any member and the prefix rule holds for them too.

Everything is fixed relative to ``AS_OF`` (not today's date), so "lapsed" and "years as member" give the
same answers on every run.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from bisect import bisect
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

from standins.members.addresses import Address, draw_address
from standins.members.draw import below, pick
from standins.members.names import EMOJI_NICKNAMES, NICKNAMES, POOLS, PREFIXES
from standins.members.phones import TypedPhone, retype, typed_landline, typed_mobile

AS_OF = date(2025, 6, 1)
FIRST_ID = 10001
FULL_SIZE = 100_000
DEFAULT_SEED = 20250601

# code -> (description, share, annual dues)
MEMBER_TYPES: dict[str, tuple[str, float, float]] = {
    "REG": ("Regular", 55.0, 245.0),
    "EMR": ("Early Career", 10.0, 150.0),
    "STU": ("Student", 12.0, 45.0),
    "RET": ("Retired", 10.0, 120.0),
    "AFF": ("Affiliate", 10.0, 95.0),
    "LIFE": ("Life", 3.0, 0.0),
}

# code -> (name, share)
CHAPTERS: dict[str, tuple[str, float]] = {
    "NE": ("New England", 6.0), "NYC": ("New York City", 9.0), "MA": ("Mid-Atlantic", 8.0),
    "SE": ("Southeast", 7.0), "FL": ("Florida", 6.0), "GL": ("Great Lakes", 8.0), "MW": ("Midwest", 7.0),
    "TX": ("Texas", 7.0), "MTN": ("Mountain", 4.0), "SW": ("Southwest", 4.0), "NCA": ("Northern California", 7.0),
    "SCA": ("Southern California", 7.0), "PNW": ("Pacific Northwest", 5.0), "AK": ("Alaska", 0.5),
    "HI": ("Hawaiʻi", 0.8), "ON": ("Ontario", 4.0), "QC": ("Québec", 2.5), "BC": ("British Columbia", 2.0),
    "PR": ("Puerto Rico", 0.7), "INTL": ("International", 4.5),
}

_EMAIL_DOMAINS = ("example.org", "example.com", "example.net", "mail.example.org", "members.example.com")
_COMPANIES = (
    "Acme Health", "Northwind Clinic", "Contoso Hospital", "Fabrikam Labs", "Lakeside Medical Group",
    "Université Laval", "St. Mary's Hospital", "Kaiser & Söhne", "Blue Yonder Care", "Riverside County",
)


class Member(NamedTuple):
    """One contact (an iMIS Party of type person). Phone fields hold the text as typed."""

    id: str
    uniform_id: str
    prefix: str
    first_name: str
    last_name: str
    informal_name: str
    email: str | None
    mobile: str | None
    mobile_e164: str | None  # what ``mobile`` denotes, for checking normalisation; not an iMIS field
    mobile_shape: str
    home_phone: str | None
    work_phone: str | None
    member_type: str
    chapter: str
    join_date: date
    paid_thru: date
    status: str  # "A" active, "I" inactive
    company: str | None
    household_of: str | None  # id of the member whose household (and often mobile) this one shares
    last_dues: float
    updated_on: datetime
    address: Address | None = None  # the mailing address (iMIS's Addresses), None when it has none

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.prefix, self.first_name, self.last_name) if part)

    @property
    def years_as_member(self) -> int:
        years = AS_OF.year - self.join_date.year
        return years - ((AS_OF.month, AS_OF.day) < (self.join_date.month, self.join_date.day))

    @property
    def is_lapsed(self) -> bool:
        return self.status == "A" and self.paid_thru < AS_OF


def _weighted(items: list[str], weights: list[float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return tuple(items), tuple(accumulate(weights))


_POOL_KEYS, _POOL_CUM = _weighted([p.key for p in POOLS], [p.weight for p in POOLS])
_POOLS_BY_KEY = {p.key: p for p in POOLS}
_TYPE_KEYS, _TYPE_CUM = _weighted(list(MEMBER_TYPES), [v[1] for v in MEMBER_TYPES.values()])
_CHAPTER_KEYS, _CHAPTER_CUM = _weighted(list(CHAPTERS), [v[1] for v in CHAPTERS.values()])


def _pick(rng: random.Random, keys: tuple[str, ...], cumulative: tuple[float, ...]) -> str:
    return keys[bisect(cumulative, rng.random() * cumulative[-1])]


@lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _email(rng: random.Random, member_id: str, first: str, last: str) -> str | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.10:
        return ""
    f, last_ascii = _ascii(first), _ascii(last)
    domain = pick(rng, _EMAIL_DOMAINS)
    if not f or not last_ascii:
        return f"member{member_id}@{domain}"
    local = pick(
        rng,
        (f"{f}.{last_ascii}", f"{f[0]}{last_ascii}", f"{f}{last_ascii[0]}", f"{f}_{last_ascii}{member_id[-2:]}")
    )
    address = f"{local}@{domain}"
    return address.title() if rng.random() < 0.03 else address


def _day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=below(rng, (end - start).days + 1))


def _paid_thru(rng: random.Random, member_type: str) -> date:
    if member_type == "LIFE":
        return date(2099, 12, 31)
    roll = rng.random()
    if roll < 0.12:  # lapsed: dues ran out before AS_OF
        return pick(rng, (date(2023, 12, 31), date(2024, 6, 30), date(2024, 12, 31), date(2025, 3, 31)))
    return pick(rng, (date(2025, 12, 31), date(2025, 12, 31), date(2026, 6, 30), date(2026, 12, 31)))


def iter_members(seed: int = DEFAULT_SEED, count: int = FULL_SIZE) -> Iterator[Member]:
    """Yield ``count`` members drawn from one stream seeded with ``seed`` (see the module docstring)."""
    rng = random.Random(seed)
    address_rng = random.Random(f"{seed}:addresses")
    next_id = FIRST_ID
    previous: Member | None = None
    previous_mobile: TypedPhone | None = None
    for _ in range(count):
        member_id = str(next_id)
        # Gaps in the id sequence, as merged and deleted records leave them.
        next_id += 1 if rng.random() < 0.9 else below(rng, 2, 40)
        pool = _POOLS_BY_KEY[_pick(rng, _POOL_KEYS, _POOL_CUM)]
        first = pick(rng, pool.first)
        household_of: str | None = None
        home = typed_landline(rng)
        if previous is not None and previous_mobile is not None and rng.random() < 0.04:
            # Second member of a household: same family name and home phone, often the same mobile.
            household_of = previous.household_of or previous.id
            last = previous.last_name
            home_raw = previous.home_phone
            mobile = retype(previous_mobile, rng) if rng.random() < 0.6 else typed_mobile(rng)
        else:
            last = pick(rng, pool.last)
            home_raw = home.raw
            mobile = typed_mobile(rng)
        roll = rng.random()
        if roll < 0.006:
            informal = pick(rng, EMOJI_NICKNAMES)
        elif roll < 0.2:
            informal = NICKNAMES.get(first, first)
        else:
            informal = first
        member_type = _pick(rng, _TYPE_KEYS, _TYPE_CUM)
        chapter = _pick(rng, _CHAPTER_KEYS, _CHAPTER_CUM)
        if mobile.e164 is not None and not mobile.e164.startswith("+1") and rng.random() < 0.7:
            chapter = "INTL"
        join = _day_between(rng, date(1975, 1, 1), AS_OF - timedelta(days=1))
        if rng.random() < 0.5:  # half the members joined in the last decade
            join = _day_between(rng, date(2015, 1, 1), AS_OF - timedelta(days=1))
        updated = datetime.combine(_day_between(rng, join, AS_OF), datetime.min.time()) + timedelta(
            seconds=below(rng, 86_400)
        )
        work = typed_landline(rng)
        member = Member(
            id=member_id,
            uniform_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            prefix=pick(rng, PREFIXES),
            first_name=first,
            last_name=last,
            informal_name=informal,
            email=_email(rng, member_id, first, last),
            mobile=mobile.raw,
            mobile_e164=mobile.e164,
            mobile_shape=mobile.shape,
            home_phone=home_raw,
            work_phone=work.raw,
            member_type=member_type,
            chapter=chapter,
            join_date=join,
            paid_thru=_paid_thru(rng, member_type),
            status="A" if rng.random() < 0.95 else "I",
            company=pick(rng, _COMPANIES) if rng.random() < 0.4 else None,
            household_of=household_of,
            last_dues=MEMBER_TYPES[member_type][2],
            updated_on=updated,
            address=draw_address(address_rng, chapter, mobile.e164),
        )
        previous, previous_mobile = member, mobile
        yield member


def generate(seed: int = DEFAULT_SEED, count: int = FULL_SIZE) -> list[Member]:
    """The first ``count`` members of the stream for ``seed``, as a list."""
    return list(iter_members(seed, count))
