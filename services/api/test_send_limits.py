"""How far test sends go: the limits, in one place. Pure.

A test send texts staff, not members, so it is bounded: only numbers on the organisation's list of staff
test numbers (at most ``MAX_TEST_NUMBERS``, kept by admins), at most ``MAX_NUMBERS_PER_SEND`` at once,
and at most ``TEXTS_PER_CALLER`` texts per user or API key and ``TEXTS_PER_ORGANISATION`` per organisation
in a window of ``WINDOW_S`` seconds. Each number texted counts as one text.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

MAX_TEST_NUMBERS: Final = 20
MAX_NUMBERS_PER_SEND: Final = 5
TEXTS_PER_CALLER: Final = 10
TEXTS_PER_ORGANISATION: Final = 50
WINDOW_S: Final = 3600


def throttle_limits(org_id: UUID, actor: str) -> dict[str, int]:
    """The throttle's keys for a test send by ``actor`` (a user's e-mail or ``api-key:<name>``), each with
    the texts it allows in a window."""
    return {f"user:{org_id}:{actor}": TEXTS_PER_CALLER, f"org:{org_id}": TEXTS_PER_ORGANISATION}


def limit_passed(counts: dict[str, tuple[int, int]], limits: dict[str, int]) -> tuple[str, int] | None:
    """The first key whose count passes its limit, with the seconds until its window ends; None if none."""
    for key, limit in limits.items():
        sends, retry_after_s = counts[key]
        if sends > limit:
            return key, retry_after_s
    return None
