"""SQL for member lists (``lists.sql``): the routes never hold a statement. Every read is organisation-scoped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from libs.common.db import Connection, Queries

QUERIES = Queries.load(Path(__file__).with_name("lists.sql"))

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """A list entry to store: ``mobile`` already in E.164."""

    member_id: str
    mobile: str
    merge_values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Added:
    added: int
    updated: int


async def lists(conn: Connection, org_id: UUID, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = [dict(r) for r in await QUERIES.fetch(conn, "lists", org_id=org_id, limit=limit, offset=offset)]
    return rows, rows[0]["total"] if rows else 0


async def get_list(conn: Connection, org_id: UUID, list_id: UUID) -> Row | None:
    row = await QUERIES.fetchrow(conn, "get-list", org_id=org_id, list_id=list_id)
    return None if row is None else dict(row)


async def lock_list(conn: Connection, org_id: UUID, list_id: UUID) -> bool:
    return await QUERIES.fetchval(conn, "lock-list", org_id=org_id, list_id=list_id) is not None


async def insert_list(conn: Connection, org_id: UUID, name: str, description: str, actor: str) -> UUID | None:
    """The new list's id, or None when the organisation already has a list of that name."""
    value: UUID | None = await QUERIES.fetchval(conn, "insert-list", org_id=org_id, list_name=name,
                                                description=description, created_by=actor)
    return value


async def name_taken(conn: Connection, org_id: UUID, name: str, list_id: UUID) -> bool:
    return bool(await QUERIES.fetchval(conn, "list-name-taken", org_id=org_id, list_name=name, list_id=list_id))


async def update_list(conn: Connection, org_id: UUID, list_id: UUID, name: str, description: str) -> None:
    await QUERIES.execute(conn, "update-list", org_id=org_id, list_id=list_id, list_name=name,
                          description=description)


async def delete_list(conn: Connection, org_id: UUID, list_id: UUID) -> None:
    await QUERIES.execute(conn, "delete-list", org_id=org_id, list_id=list_id)


async def campaigns_using(conn: Connection, org_id: UUID, list_id: UUID) -> list[str]:
    return [r["name"] for r in await QUERIES.fetch(conn, "campaigns-using-list", org_id=org_id,
                                                   list_id=str(list_id))]


async def add_entries(conn: Connection, list_id: UUID, entries: Sequence[Entry]) -> Added:
    """Insert or replace ``entries`` (one per member id: the last one wins) and touch the list."""
    latest = {e.member_id: e for e in entries}
    if not latest:
        return Added(0, 0)
    rows = await QUERIES.fetch(
        conn, "upsert-entries", list_id=list_id, member_ids=list(latest),
        mobiles=[e.mobile for e in latest.values()],
        merge_values=[json.dumps(e.merge_values, ensure_ascii=False) for e in latest.values()])
    await QUERIES.execute(conn, "touch-list", list_id=list_id)
    added = sum(1 for r in rows if r["inserted"])
    return Added(added, len(rows) - added)


async def entries(conn: Connection, list_id: UUID, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = []
    for record in await QUERIES.fetch(conn, "entries", list_id=list_id, limit=limit, offset=offset):
        row = dict(record)
        row["merge_values"] = json.loads(row["merge_values"])
        rows.append(row)
    return rows, rows[0]["total"] if rows else 0


async def remove_entries(conn: Connection, list_id: UUID, member_ids: Sequence[str]) -> int:
    status = await QUERIES.execute(conn, "delete-entries", list_id=list_id, member_ids=list(member_ids))
    await QUERIES.execute(conn, "touch-list", list_id=list_id)
    return int(str(status).rsplit(" ", 1)[-1])


async def upload_rows(conn: Connection, org_id: UUID, upload_id: UUID) -> list[Row] | None:
    """The upload's accepted rows (member id, mobile as the file had it, merge values), or None when the
    organisation has no such upload."""
    if not await QUERIES.fetchval(conn, "upload-exists", org_id=org_id, upload_id=upload_id):
        return None
    return [{**dict(r), "merge_values": json.loads(r["merge_values"])}
            for r in await QUERIES.fetch(conn, "upload-rows", org_id=org_id, upload_id=upload_id)]


async def run_recipients(conn: Connection, org_id: UUID, run_id: UUID) -> list[Row] | None:
    """Who the run texted (member id, E.164, merge values), or None when the organisation has no such run."""
    if not await QUERIES.fetchval(conn, "run-exists", org_id=org_id, run_id=run_id):
        return None
    return [{**dict(r), "merge_values": json.loads(r["merge_values"])}
            for r in await QUERIES.fetch(conn, "run-recipients", org_id=org_id, run_id=run_id)]


async def recent_runs(conn: Connection, org_id: UUID) -> list[Row]:
    return [dict(r) for r in await QUERIES.fetch(conn, "recent-runs", org_id=org_id)]
