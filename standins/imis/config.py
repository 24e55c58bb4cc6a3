"""Settings of one iMIS stand-in process, and the member data set it serves.

Defaults suit tests and the local stack; ``python -m standins.imis --help`` lists the flags, each of
which also reads an ``IMIS_STANDIN_*`` environment variable.
"""

from __future__ import annotations

from dataclasses import dataclass

from standins.members.dataset import DEFAULT_SEED, FULL_SIZE, Member, generate
from standins.members.fixtures import SMALL


@dataclass(frozen=True, slots=True)
class ImisConfig:
    username: str = "SMS_INTEGRATION"
    password: str = "standin-password"
    client_id: str | None = "textpulse"
    client_secret: str | None = "standin-client-secret"
    expires_in: int = 1199  # seconds; the value a forum thread reports (docs/imis.md#authentication)
    dataset: str = "small"  # "small" (the 16 fixtures), "full" (100,000) or a member count
    seed: int = DEFAULT_SEED
    default_limit: int = 100
    max_limit: int = 500  # larger requests are cut to this (whether iMIS cuts or refuses is unverified)
    require_eq_prefix: bool = False  # some sites refuse Parameter values without "eq:"
    # The Query service endpoint (/api/Query) came with iMIS 20.3.77; False plays an older site, where
    # only /api/IQA answers (docs/imis.md#the-query-endpoint).
    query_service: bool = True
    panels: tuple[str, ...] = ("TP_SmsPreferences",)
    # The activity types the administrator created (docs/imis.md#text-messenger-activities); a test
    # leaves one out to see the settings check name it.
    activity_types: tuple[str, ...] = ("TEXTUNSUB", "TEXTUNSUB_A")
    # Every n-th member id (by value) starts with an SMS opt-out row, as a live site would have; 0 = none.
    preexisting_opt_out_every: int = 101


def load_members(dataset: str, seed: int) -> list[Member]:
    """The members for a ``dataset`` spec: ``small``, ``full`` or a count; raises ValueError otherwise."""
    if dataset == "small":
        return list(SMALL)
    if dataset == "full":
        return generate(seed, FULL_SIZE)
    if dataset.isdigit():
        return generate(seed, int(dataset))
    raise ValueError(f"unknown dataset {dataset!r}: use 'small', 'full' or a member count")
