"""Suppressions of erased members: the number is kept only as its keyed digest (``SecretStore.digests``,
migration 0031), so whoever checks or lifts a suppression by number also checks or lifts it by digest.

    suppressed = await suppressed_numbers(conn, secrets, org_id, sender, ["+447400123456"])  # {...} or set()
    lifted = await lift(conn, secrets, org_id, [("+447400123456", "")])  # {("+447400123456", "")}

An organisation with no data key has never erased anyone: both answer at once with nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final
from uuid import UUID

from libs.common.db import Connection, Queries
from libs.common.secret_store import SecretStore

QUERIES: Final = Queries.load(Path(__file__).with_name("erased_suppressions.sql"))


async def suppressed_numbers(conn: Connection, secrets: SecretStore, org_id: UUID, sender: str,
                             phones: Sequence[str]) -> set[str]:
    """The numbers among ``phones`` an erased member had suppressed for the organisation or ``sender``.

    The organisation's erased suppressions are read first: with none (almost always), no digest is computed."""
    erased = {r["phone_digest"] for r in await QUERIES.fetch(conn, "suppressed-digests", org_id=org_id, sender=sender)}
    if not erased:
        return set()
    digests = await secrets.digests(conn, org_id, phones)
    return {phone for phone, digest in (digests or {}).items() if digest in erased}


async def lift(conn: Connection, secrets: SecretStore, org_id: UUID,
               entries: Sequence[tuple[str, str | None]]) -> set[tuple[str, str]]:
    """Lift (number, scope) entries (scope None: every scope); returns the (number, scope) lifted."""
    digests = await secrets.digests(conn, org_id, {phone for phone, _ in entries})
    if not digests:
        return set()
    numbers = {d: p for p, d in digests.items()}
    rows = await QUERIES.fetch(conn, "lift-digests", org_id=org_id, digests=[digests[p] for p, _ in entries],
                               scopes=[scope for _, scope in entries])
    return {(numbers[r["phone_digest"]], r["scope"]) for r in rows}
