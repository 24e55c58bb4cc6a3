"""SQL for CSV uploads and audience previews (``uploads.sql``): the routes never hold a statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.csv_audience import CsvParseResult, CsvRejection
from libs.common.db import Queries

QUERIES = Queries.load(Path(__file__).with_name("uploads.sql"))


@dataclass(frozen=True, slots=True)
class ImisSource:
    base_url: str | None
    username: str
    password: str
    member_id_column: str
    mobile_column: str
    opt_out_column: str | None


async def save_upload(conn: asyncpg.Connection, org_id: UUID, filename: str, uploaded_by: str,
                      parsed: CsvParseResult) -> asyncpg.Record:
    """Store a usable upload, its rows and its rejection report in one transaction (rows with COPY:
    200,000 of them in about a second); return its ``id`` and ``created_at``."""
    async with conn.transaction():
        row = await QUERIES.fetchrow(
            conn, "insert-csv-upload", org_id=org_id, filename=filename, uploaded_by=uploaded_by,
            headers=list(parsed.headers), mapping=json.dumps(parsed.mapping, ensure_ascii=False),
            delimiter=parsed.delimiter, rows_accepted=len(parsed.rows), rows_rejected=len(parsed.rejections))
        assert row is not None
        upload_id = row["id"]
        await conn.copy_records_to_table(
            "csv_upload_rows", columns=("upload_id", "line", "member_id", "mobile", "merge_values"),
            records=((upload_id, r.line, r.member_id, r.mobile, json.dumps(r.values, ensure_ascii=False))
                     for r in parsed.rows))
        await conn.copy_records_to_table(
            "csv_upload_rejections", columns=("upload_id", "line", "reason", "detail", "raw"),
            records=((upload_id, r.line, r.reason, r.detail, r.raw) for r in parsed.rejections))
    return row


async def upload(conn: asyncpg.Connection, org_id: UUID, upload_id: UUID) -> dict[str, Any] | None:
    row = await QUERIES.fetchrow(conn, "csv-upload", org_id=org_id, upload_id=upload_id)
    if row is None:
        return None
    values = dict(row)
    values["mapping"] = json.loads(values["mapping"])
    return values


async def rejection_counts(conn: asyncpg.Connection, upload_id: UUID) -> dict[str, int]:
    return {r["reason"]: r["n"] for r in await QUERIES.fetch(conn, "csv-rejection-counts", upload_id=upload_id)}


async def rejections(conn: asyncpg.Connection, upload_id: UUID) -> list[CsvRejection]:
    rows = await QUERIES.fetch(conn, "csv-rejections", upload_id=upload_id)
    return [CsvRejection(r["line"], r["reason"], r["detail"], r["raw"]) for r in rows]


async def csv_members(conn: asyncpg.Connection, upload_id: UUID) -> list[tuple[str, str | None]]:
    return [(r["member_id"], r["mobile"]) for r in await QUERIES.fetch(conn, "csv-members", upload_id=upload_id)]


async def list_members(conn: asyncpg.Connection, org_id: UUID, list_id: UUID) -> list[tuple[str, str | None]] | None:
    """The list's (member id, mobile) entries, or None when the organisation has no such list."""
    rows = await QUERIES.fetch(conn, "list-members", org_id=org_id, list_id=list_id)
    if not rows:
        return None
    return [(r["member_id"], r["mobile"]) for r in rows if r["member_id"] is not None]


async def suppressed(conn: asyncpg.Connection, org_id: UUID, phones: Sequence[str]) -> set[str]:
    rows = await QUERIES.fetch(conn, "suppressed-numbers", org_id=org_id, phones=list(phones))
    return {r["phone"] for r in rows}


async def imis_source(conn: asyncpg.Connection, org_id: UUID) -> ImisSource | None:
    row = await QUERIES.fetchrow(conn, "imis-source", org_id=org_id)
    return ImisSource(**dict(row)) if row is not None else None
