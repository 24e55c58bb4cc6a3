"""Erasure of one member for a GDPR request: their numbers, names and words leave every table, while counts
and the fact of a suppression stay (queries in erasure.sql, schema in migration 0031).

    result = await erase_member(conn, secrets, org_id, "+44", imis_id="10234", erased_by="ann@example.org")
    result.counts   # {"run_recipients": 3, "send_ledger": 2, "suppressions": 1, ...}

By iMIS id, the member's rows go, and so do the numbers Textpulse saw them use (the number index, run
snapshots, lists and CSV files), wherever they appear. By number, the rows holding that number go.

A suppression is kept under the number's keyed digest (``SecretStore.digests``), so a later run that
resolves the number excludes it as ``opted_out`` exactly as before. Idempotent: a second erasure finds
nothing and answers ``already_erased``. Left for a repeated erasure, because they are still being worked
on: a webhook not yet applied, a ledger row whose send is in flight, an iMIS write-back not yet done, an
event not yet published.

Raises ``NotFound`` (``member_unknown``) when Textpulse holds nothing for the member and never erased them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import UUID

import phonenumbers

from libs.common import phone as phones
from libs.common.db import Connection, Queries
from libs.common.secret_store import SecretStore
from services.api.errors import NotFound

QUERIES: Final = Queries.load(Path(__file__).with_name("erasure.sql"))

# The webhook parameters that name no person: ids, states and codes (docs/twilio.md). From, To, Body,
# the media URLs and the From/To city, state, zip and country fields all go.
KEPT_WEBHOOK_PARAMS: Final = (
    "AccountSid", "ApiVersion", "ErrorCode", "MessageSid", "MessageStatus", "MessagingServiceSid", "NumMedia",
    "NumSegments", "OptOutType", "SmsMessageSid", "SmsSid", "SmsStatus",
)


@dataclass(frozen=True, slots=True)
class Erased:
    counts: dict[str, int]
    numbers: int
    suppressions_kept: int
    already_erased: bool


async def erase_member(conn: Connection, secrets: SecretStore, org_id: UUID, default_country_prefix: str, *,
                       erased_by: str, imis_id: str | None = None, phone: str | None = None) -> Erased:
    """Erase one member, given by ``imis_id`` or by ``phone`` (E.164); call it inside a transaction."""
    member_ids = [imis_id] if imis_id is not None else []
    numbers = {phone} if phone is not None else await _member_numbers(conn, org_id, imis_id or "",
                                                                      default_country_prefix)
    subject = f"imis:{imis_id}" if imis_id is not None else f"phone:{phone}"
    ordered = sorted(numbers)
    digests = await secrets.digests(conn, org_id, [*ordered, subject], create_key=True)
    assert digests is not None  # create_key
    common = {"org_id": org_id, "phones": ordered, "member_ids": member_ids}

    counts: dict[str, int] = {}
    counts["list_entries"] = await _delete_list_entries(conn, org_id, ordered, member_ids, default_country_prefix)
    counts["csv_rows"] = await _delete_csv_rows(conn, org_id, ordered, member_ids, default_country_prefix)
    counts["csv_rejections"] = await QUERIES.fetchval(conn, "blank-csv-rejections", org_id=org_id,
                                                      patterns=[f"%{_national(n)}%" for n in ordered])
    counts["dropped_unsent"] = await QUERIES.fetchval(conn, "drop-unsent", **common)
    counts["short_links"] = await QUERIES.fetchval(conn, "delete-short-links", **common)
    counts["link_clicks"] = await QUERIES.fetchval(conn, "erase-link-clicks", **common)
    counts["run_recipients"] = await QUERIES.fetchval(conn, "erase-run-recipients", **common)
    await QUERIES.execute(conn, "unlink-duplicates", org_id=org_id, member_ids=member_ids)
    counts["send_ledger"] = await QUERIES.fetchval(conn, "erase-ledger", org_id=org_id, phones=ordered)
    counts["replies"] = await QUERIES.fetchval(conn, "erase-replies", org_id=org_id, phones=ordered)
    counts["webhook_requests"] = await QUERIES.fetchval(conn, "erase-webhooks", org_id=org_id, phones=ordered,
                                                        kept=list(KEPT_WEBHOOK_PARAMS))
    number_digests = [digests[n] for n in ordered]
    counts["consent_history"] = await QUERIES.fetchval(conn, "erase-consent-history", org_id=org_id,
                                                       phones=ordered, digests=number_digests)
    moved = await QUERIES.fetchrow(conn, "keep-suppressions-as-digests", org_id=org_id, phones=ordered,
                                   digests=number_digests)
    assert moved is not None
    counts["suppressions"] = moved["moved"]
    counts["imis_writebacks"] = await QUERIES.fetchval(conn, "erase-imis-jobs", **common)
    counts["revocation_confirmations"] = await QUERIES.fetchval(conn, "erase-revocation-confirmations", org_id=org_id,
                                                                phones=ordered)
    counts["inbox_conversations"] = await QUERIES.fetchval(conn, "delete-conversations", org_id=org_id,
                                                           phones=ordered)
    counts["one_off_texts"] = await QUERIES.fetchval(conn, "erase-one-off-texts", org_id=org_id, phones=ordered)
    counts["member_phone_index"] = await QUERIES.fetchval(conn, "delete-member-index", **common)
    counts["bad_numbers"] = await QUERIES.fetchval(conn, "delete-bad-numbers", org_id=org_id, phones=ordered)
    counts["test_numbers"] = await QUERIES.fetchval(conn, "delete-test-numbers", org_id=org_id, phones=ordered)
    counts["outbox_events"] = await QUERIES.fetchval(conn, "erase-outbox-payloads", org_id=org_id,
                                                     quoted=[f'%"{n}"%' for n in ordered])
    counts["webhook_events"] = await QUERIES.fetchval(conn, "delete-webhook-events", org_id=org_id, phones=ordered,
                                                      quoted=[f'%"{n}"%' for n in ordered])
    counts = {table: int(n) for table, n in counts.items()}

    kept = int(await QUERIES.fetchval(conn, "erased-suppressions", org_id=org_id, digests=number_digests))
    if not any(counts.values()):
        if not await QUERIES.fetchval(conn, "erased-before", org_id=org_id, subject_digest=digests[subject]):
            raise NotFound("member_unknown", "Textpulse holds nothing for that member: no text, reply, list, "
                           "upload or suppression names them, so there is nothing to erase.")
        return Erased(counts, len(ordered), kept, already_erased=True)
    await QUERIES.execute(conn, "record-erasure", org_id=org_id, subject_digest=digests[subject],
                          erased_by=erased_by, counts=json.dumps(counts))
    return Erased(counts, len(ordered), kept, already_erased=False)


async def _member_numbers(conn: Connection, org_id: UUID, member_id: str, prefix: str) -> set[str]:
    seen = {r["phone"] for r in await QUERIES.fetch(conn, "member-numbers", org_id=org_id, member_id=member_id)}
    typed = [r["mobile"] for r in await QUERIES.fetch(conn, "member-typed-numbers", org_id=org_id, member_id=member_id)]
    return seen | {e164 for raw in typed if (e164 := _e164(raw, prefix)) is not None}


async def _delete_list_entries(conn: Connection, org_id: UUID, numbers: list[str], member_ids: list[str],
                               prefix: str) -> int:
    rows = await QUERIES.fetch(conn, "list-entry-candidates", org_id=org_id, member_ids=member_ids,
                               tails=[n[-7:] for n in numbers])
    hits = [r for r in rows if r["member_id"] in member_ids or _e164(r["mobile"], prefix) in numbers]
    if not hits:
        return 0
    return int(await QUERIES.fetchval(conn, "delete-list-entries", list_ids=[r["list_id"] for r in hits],
                                      entry_member_ids=[r["member_id"] for r in hits]))


async def _delete_csv_rows(conn: Connection, org_id: UUID, numbers: list[str], member_ids: list[str],
                           prefix: str) -> int:
    rows = await QUERIES.fetch(conn, "csv-row-candidates", org_id=org_id, member_ids=member_ids,
                               tails=[n[-7:] for n in numbers])
    hits = [r for r in rows if r["member_id"] in member_ids or _e164(r["mobile"], prefix) in numbers]
    if not hits:
        return 0
    return int(await QUERIES.fetchval(conn, "delete-csv-rows", upload_ids=[r["upload_id"] for r in hits],
                                      lines=[r["line"] for r in hits]))


def _e164(raw: str | None, prefix: str) -> str | None:
    result = phones.normalise(raw or "", prefix)
    return result.e164 if isinstance(result, phones.Normalised) else None


def _national(e164: str) -> str:
    """The national significant number of a valid E.164 number: what a refused CSV row may hold of it."""
    return str(phonenumbers.parse(e164).national_number)
