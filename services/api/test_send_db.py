"""The SQL of test sends and staff test numbers (``test_send.sql``), as typed calls."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import asyncpg

from libs.common import erased_suppressions
from libs.common.db import Connection, Queries
from libs.common.secret_store import SecretStore

QUERIES: Final = Queries.load(Path(__file__).with_name("test_send.sql"))


@dataclass(frozen=True, slots=True)
class TestText:
    """One test text as it ended: ``state`` 'sent' (with its SID) or 'failed' (with Twilio's code)."""

    to: str
    segments: int
    state: str
    message_sid: str | None = None
    twilio_status: str | None = None
    error_code: int | None = None
    reason: str | None = None


async def campaign(conn: Connection, org_id: UUID, campaign_id: UUID) -> asyncpg.Record | None:
    return await QUERIES.fetchrow(conn, "test-send-campaign", campaign_id=campaign_id, org_id=org_id)


async def account(conn: Connection, org_id: UUID) -> asyncpg.Record | None:
    return await QUERIES.fetchrow(conn, "test-send-account", org_id=org_id)


async def suppressed(conn: Connection, secrets: SecretStore, org_id: UUID, phones: list[str],
                     sender: str) -> list[str]:
    """The numbers among ``phones`` that may not be texted from ``sender``, an erased member's included."""
    rows = await QUERIES.fetch(conn, "test-send-suppressed", org_id=org_id, phones=phones, sender=sender)
    erased = await erased_suppressions.suppressed_numbers(conn, secrets, org_id, sender, phones)
    return sorted({r["phone"] for r in rows} | erased)


async def count_test_sends(conn: Connection, keys: list[str], texts: int,
                           window_s: int) -> dict[str, tuple[int, int]]:
    """Each key's texts in its window, this send's included, and the seconds until that window ends."""
    rows = await QUERIES.fetch(conn, "count-test-sends", keys=sorted(keys), texts=texts, window_s=window_s)
    return {r["key"]: (r["sends"], r["retry_after_s"]) for r in rows}


async def record_test_texts(conn: Connection, org_id: UUID, campaign_id: UUID, sender: str,
                            texts: list[TestText]) -> None:
    await QUERIES.execute(
        conn, "record-test-texts", org_id=org_id, campaign_id=campaign_id, sender=sender,
        to_numbers=[t.to for t in texts], segments=[t.segments for t in texts], states=[t.state for t in texts],
        message_sids=[t.message_sid for t in texts], twilio_statuses=[t.twilio_status for t in texts],
        error_codes=[t.error_code for t in texts], reasons=[t.reason for t in texts])


async def count_test_usage(conn: Connection, org_id: UUID, *, time_zone: str, test: bool, messages: int,
                           segments: int, failed: int, unpriced_segments: int, segment_cost: Decimal) -> None:
    await QUERIES.execute(conn, "count-test-usage", org_id=org_id, time_zone=time_zone, test=test,
                          messages=messages, segments=segments, failed=failed,
                          unpriced_segments=unpriced_segments, segment_cost=segment_cost)


async def staff_test_numbers(conn: Connection, org_id: UUID) -> list[dict[str, Any]]:
    return [dict(r) for r in await QUERIES.fetch(conn, "staff-test-numbers", org_id=org_id)]


async def test_numbers_among(conn: Connection, org_id: UUID, phones: list[str]) -> set[str]:
    return {r["phone"] for r in await QUERIES.fetch(conn, "test-numbers-among", org_id=org_id, phones=phones)}


async def add_staff_test_number(conn: Connection, org_id: UUID, phone: str, label: str, added_by: str,
                                max_numbers: int) -> bool:
    """False when the list already holds ``max_numbers`` other numbers. Call it inside a transaction."""
    await QUERIES.execute(conn, "lock-staff-test-numbers", org_id=org_id)
    return await QUERIES.fetchval(conn, "add-staff-test-number", org_id=org_id, phone=phone, label=label,
                                  added_by=added_by, max_numbers=max_numbers) is not None


async def remove_staff_test_number(conn: Connection, org_id: UUID, phone: str) -> bool:
    return await QUERIES.fetchval(conn, "remove-staff-test-number", org_id=org_id, phone=phone) is not None
