"""SQL for CSV uploads and audience previews (``uploads.sql``): the routes never hold a statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from libs.common import erased_suppressions
from libs.common.audience_members import ColumnMap, stored_member
from libs.common.audience_rules import AudienceMember
from libs.common.csv_audience import CsvRejection, CsvRow, CsvStream
from libs.common.db import Connection, Queries
from libs.common.imis_iqa import Endpoint
from libs.common.secret_store import IMIS_PASSWORD, SecretStore

QUERIES = Queries.load(Path(__file__).with_name("uploads.sql"))


@dataclass(frozen=True, slots=True)
class ImisSource:
    base_url: str | None
    username: str
    password: str = field(repr=False)
    columns: ColumnMap
    query_endpoint: Endpoint = "iqa"


@dataclass(frozen=True, slots=True)
class Sender:
    address: str
    verification: str
    segments_per_second: float = 3.0


async def prune_abandoned(conn: Connection) -> None:
    await QUERIES.execute(conn, "prune-abandoned-csv-uploads")


async def begin_upload(conn: Connection, org_id: UUID, filename: str, uploaded_by: str,
                       stream: CsvStream) -> asyncpg.Record:
    """Store the upload as 'receiving', from its header; return its ``id`` and ``created_at``."""
    row = await QUERIES.fetchrow(
        conn, "begin-csv-upload", org_id=org_id, filename=filename, uploaded_by=uploaded_by,
        headers=list(stream.headers), mapping=json.dumps(stream.mapping, ensure_ascii=False),
        delimiter=stream.delimiter)
    assert row is not None
    return row


async def add_rows(conn: Connection, upload_id: UUID, rows: Sequence[CsvRow]) -> None:
    """One batch of accepted rows, with COPY, committed on its own."""
    await conn.copy_records_to_table(
        "csv_upload_rows", columns=("upload_id", "line", "member_id", "mobile", "merge_values"),
        records=((upload_id, r.line, r.member_id, r.mobile, json.dumps(r.values, ensure_ascii=False))
                 for r in rows))


async def finish_upload(conn: Connection, upload_id: UUID, stream: CsvStream) -> None:
    """The kept rejections and the counts, and the upload made 'ready', in one transaction."""
    async with conn.transaction():
        await conn.copy_records_to_table(
            "csv_upload_rejections", columns=("upload_id", "line", "reason", "detail", "raw"),
            records=((upload_id, r.line, r.reason, r.detail, r.raw) for r in stream.rejections))
        await QUERIES.execute(conn, "finish-csv-upload", upload_id=upload_id, rows_accepted=stream.rows_accepted,
                              rows_rejected=stream.rows_rejected,
                              rejected_by_reason=json.dumps(dict(stream.rejected_by_reason)))


async def discard_upload(conn: Connection, upload_id: UUID) -> None:
    await QUERIES.execute(conn, "discard-csv-upload", upload_id=upload_id)


async def upload(conn: Connection, org_id: UUID, upload_id: UUID) -> dict[str, Any] | None:
    """A finished ('ready') upload of this organisation, or None."""
    row = await QUERIES.fetchrow(conn, "csv-upload", org_id=org_id, upload_id=upload_id)
    if row is None:
        return None
    values = dict(row)
    values["mapping"] = json.loads(values["mapping"])
    values["rejected_by_reason"] = json.loads(values["rejected_by_reason"])
    return values


async def rejections(conn: Connection, upload_id: UUID) -> list[CsvRejection]:
    rows = await QUERIES.fetch(conn, "csv-rejections", upload_id=upload_id)
    return [CsvRejection(r["line"], r["reason"], r["detail"], r["raw"]) for r in rows]


async def csv_members(conn: Connection, upload_id: UUID) -> list[tuple[str, str | None]]:
    return [(r["member_id"], r["mobile"]) for r in await QUERIES.fetch(conn, "csv-members", upload_id=upload_id)]


async def csv_sample(conn: Connection, upload_id: UUID, limit: int) -> list[AudienceMember]:
    rows = await QUERIES.fetch(conn, "csv-sample", upload_id=upload_id, limit=limit)
    return [stored_member(r["member_id"], r["mobile"], json.loads(r["merge_values"])) for r in rows]


async def list_size(conn: Connection, org_id: UUID, list_id: UUID) -> int | None:
    """The list's entries, or None when the organisation has no such list."""
    row = await QUERIES.fetchrow(conn, "list-size", org_id=org_id, list_id=list_id)
    return None if row is None else row["entries"]


async def list_sample(conn: Connection, list_id: UUID, limit: int) -> tuple[list[AudienceMember], set[str]]:
    """The list's first ``limit`` entries, and the merge fields its entries fill."""
    rows = await QUERIES.fetch(conn, "list-sample", list_id=list_id, limit=limit)
    fields = {r["field"] for r in await QUERIES.fetch(conn, "list-fields", list_id=list_id)}
    members = [stored_member(r["member_id"], r["mobile"], json.loads(r["merge_values"])) for r in rows]
    return members, fields


async def excluded_numbers(conn: Connection, secrets: SecretStore, org_id: UUID, sender: str | None,
                           phones: Sequence[str]) -> tuple[set[str], dict[str, int | None]]:
    """(suppressed numbers, {bad number: Twilio error code}) among ``phones``, for ``sender``; suppressed
    includes an erased member's number kept as its digest (libs/common/erased_suppressions.py)."""
    rows = await QUERIES.fetch(conn, "excluded-numbers", org_id=org_id, sender=sender or "", phones=list(phones))
    suppressed = {r["phone"] for r in rows if r["why"] == "suppressed"}
    suppressed |= await erased_suppressions.suppressed_numbers(conn, secrets, org_id, sender or "", phones)
    return suppressed, {r["phone"]: r["error_code"] for r in rows if r["why"] == "bad_number"}


async def campaign_sender(conn: Connection, org_id: UUID, sender_id: UUID | None) -> Sender | None:
    row = await QUERIES.fetchrow(conn, "campaign-sender", org_id=org_id, sender_id=sender_id)
    return Sender(row["address"], row["verification"], float(row["segments_per_second"])) if row is not None else None


async def imis_source(conn: Connection, secrets: SecretStore, org_id: UUID) -> ImisSource | None:
    """The organisation's iMIS login (password decrypted) and columns; SecretUnreadable if it does not decrypt."""
    row = await QUERIES.fetchrow(conn, "imis-source", org_id=org_id)
    if row is None:
        return None
    columns = ColumnMap(row["member_id_column"], row["mobile_column"], row["opt_out_column"],
                        state=row["state_column"], country=row["country_column"])
    if row["merge_columns"] is not None:
        fields = {"first_name": row["first_name_column"], **json.loads(row["merge_columns"])}
        columns = replace(columns, fields=fields)
    password = await secrets.open(conn, org_id, IMIS_PASSWORD, row["password"])
    return ImisSource(row["base_url"], row["username"], password, columns, row["query_endpoint"])
