"""``/api/v1/lists``: member lists kept in Textpulse, a campaign audience as ``{"kind": "list", "list_id": ...}``.

- ``GET`` / ``POST`` ``/lists``; ``GET`` / ``PATCH`` / ``DELETE`` ``/lists/{id}`` (a list a campaign still
  sends to is not deleted: 409 ``list_in_use`` naming the campaigns).
- ``GET /lists/{id}/entries`` (paged), ``POST /lists/{id}/entries`` ``{"text": ...}``: pasted numbers or
  members, one a line (:mod:`services.api.list_lines`); every line that is not added comes back with its
  line number and why. ``.../entries/from-upload`` ``{"upload_id"}``: an uploaded CSV's accepted rows
  (upload with ``POST /api/v1/audiences/csv``). ``.../entries/from-run`` ``{"run_id"}``: whom a past run
  texted. ``.../entries/remove`` ``{"member_ids": [...]}``.

Numbers are stored in E.164, normalised with the organisation's default country prefix. A member added
again replaces their number and merge values. Admins and staff alike; another organisation's list, upload
or run is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import transaction
from services.api import lists_db
from services.api.deps import ActorDep, OrgDep, PageOffset, PoolDep
from services.api.errors import Conflict, InvalidInput, NotFound
from services.api.list_lines import MAX_LINES, entries_from_rows, parse_pasted

router = APIRouter(prefix="/lists", tags=["lists"])

ListName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ListName
    description: Description = ""


class ListUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ListName | None = None
    description: Description | None = None


class ListOut(BaseModel):
    id: UUID
    name: str
    description: str
    members: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class ListPage(BaseModel):
    items: list[ListOut]
    total: int
    limit: int
    offset: int


class PastedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(max_length=1_000_000, description=(
        "one member a line: a mobile number, or 'member id, mobile[, first name[, last name]]'"))]


class FromUploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upload_id: UUID


class FromRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: UUID


class RemoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_ids: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
                          Field(min_length=1, max_length=1000)]


class LineRejected(BaseModel):
    line: int
    text: str
    code: str
    message: str


class Added(BaseModel):
    added: int = Field(description="members new to the list")
    updated: int = Field(description="members already listed, whose number and merge values were replaced")
    members: int = Field(description="members on the list now")
    rejected: list[LineRejected] = Field(default=[], description="pasted lines not added, and why")
    unusable: int = Field(default=0, description="upload or run rows without a usable number")


class Removed(BaseModel):
    removed: int
    members: int


class EntryOut(BaseModel):
    member_id: str
    mobile: str | None
    merge_values: dict[str, Any]
    added_at: datetime


class EntryPage(BaseModel):
    items: list[EntryOut]
    total: int
    limit: int
    offset: int


Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("", summary="The organisation's member lists, by name")
async def get_lists(org: OrgDep, pool: PoolDep, limit: Limit = 100, offset: PageOffset = 0) -> ListPage:
    async with pool.acquire() as conn:
        rows, total = await lists_db.lists(conn, org.id, limit, offset)
    return ListPage(items=[ListOut(**r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("", status_code=201, summary="Create an empty list")
async def create_list(body: ListIn, org: OrgDep, actor: ActorDep, pool: PoolDep) -> ListOut:
    async with transaction(pool) as conn:
        list_id = await lists_db.insert_list(conn, org.id, body.name, body.description, actor)
        if list_id is None:
            raise _name_taken(body.name)
        return await _list_out(conn, org.id, list_id)


@router.get("/{list_id}")
async def get_list(list_id: UUID, org: OrgDep, pool: PoolDep) -> ListOut:
    async with pool.acquire() as conn:
        return await _list_out(conn, org.id, list_id)


@router.patch("/{list_id}", summary="Rename a list or change its description")
async def update_list(list_id: UUID, body: ListUpdate, org: OrgDep, pool: PoolDep) -> ListOut:
    async with transaction(pool) as conn:
        current = await _locked(conn, org.id, list_id)
        name = body.name if body.name is not None else current["name"]
        if await lists_db.name_taken(conn, org.id, name, list_id):
            raise _name_taken(name)
        description = body.description if body.description is not None else current["description"]
        await lists_db.update_list(conn, org.id, list_id, name, description)
        return await _list_out(conn, org.id, list_id)


@router.delete("/{list_id}", status_code=204, summary="Delete a list that no campaign still sends to")
async def delete_list(list_id: UUID, org: OrgDep, pool: PoolDep) -> Response:
    async with transaction(pool) as conn:
        await _locked(conn, org.id, list_id)
        using = await lists_db.campaigns_using(conn, org.id, list_id)
        if using:
            names = ", ".join(f"'{n}'" for n in using)
            raise Conflict("list_in_use", f"campaigns still send to this list: {names}; choose another audience "
                                          "for them first")
        await lists_db.delete_list(conn, org.id, list_id)
    return Response(status_code=204)


@router.get("/{list_id}/entries", summary="The list's members, in the order they were added")
async def get_entries(
    list_id: UUID, org: OrgDep, pool: PoolDep, limit: Limit = 100, offset: PageOffset = 0
) -> EntryPage:
    async with pool.acquire() as conn:
        await _list_out(conn, org.id, list_id)
        rows, total = await lists_db.entries(conn, list_id, limit, offset)
    return EntryPage(items=[EntryOut(**r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/{list_id}/entries", summary="Add pasted numbers or members, one a line")
async def add_pasted(list_id: UUID, body: PastedIn, org: OrgDep, pool: PoolDep) -> Added:
    lines = body.text.splitlines()
    if not any(line.strip() for line in lines):
        raise InvalidInput("text", "text_empty", "paste at least one number or member")
    if len(lines) > MAX_LINES:
        raise InvalidInput("text", "too_many_lines", f"{len(lines):,} lines; add at most {MAX_LINES:,} at a time")
    entries, problems = parse_pasted(body.text, org.default_country_prefix)
    rejected = [LineRejected(line=p.line, text=p.text, code=p.code, message=p.message) for p in problems]
    if not entries:
        detail = "; ".join(f"line {p.line}: {p.message}" for p in problems[:10])
        raise InvalidInput("text", "no_usable_lines", f"no line could be added ({detail})")
    async with transaction(pool) as conn:
        await _locked(conn, org.id, list_id)
        return await _added(conn, org.id, list_id, await lists_db.add_entries(conn, list_id, entries), rejected)


@router.post("/{list_id}/entries/from-upload", summary="Add an uploaded CSV file's accepted rows")
async def add_from_upload(list_id: UUID, body: FromUploadIn, org: OrgDep, pool: PoolDep) -> Added:
    async with transaction(pool) as conn:
        await _locked(conn, org.id, list_id)
        rows = await lists_db.upload_rows(conn, org.id, body.upload_id)
        if rows is None:
            raise NotFound("csv_upload_not_found", f"upload_id: no CSV upload {body.upload_id}")
        entries, unusable = entries_from_rows(rows, org.default_country_prefix)
        added = await lists_db.add_entries(conn, list_id, entries)
        return await _added(conn, org.id, list_id, added, unusable=unusable)


@router.post("/{list_id}/entries/from-run", summary="Add the members a past run texted")
async def add_from_run(list_id: UUID, body: FromRunIn, org: OrgDep, pool: PoolDep) -> Added:
    async with transaction(pool) as conn:
        await _locked(conn, org.id, list_id)
        rows = await lists_db.run_recipients(conn, org.id, body.run_id)
        if rows is None:
            raise NotFound("run_not_found", f"run_id: no run {body.run_id}")
        entries, unusable = entries_from_rows(rows, org.default_country_prefix, mobile_key="e164")
        added = await lists_db.add_entries(conn, list_id, entries)
        return await _added(conn, org.id, list_id, added, unusable=unusable)


@router.post("/{list_id}/entries/remove", summary="Remove members from the list")
async def remove_entries(list_id: UUID, body: RemoveIn, org: OrgDep, pool: PoolDep) -> Removed:
    async with transaction(pool) as conn:
        await _locked(conn, org.id, list_id)
        removed = await lists_db.remove_entries(conn, list_id, body.member_ids)
        return Removed(removed=removed, members=(await _list_out(conn, org.id, list_id)).members)


async def _list_out(conn: Any, org_id: UUID, list_id: UUID) -> ListOut:
    row = await lists_db.get_list(conn, org_id, list_id)
    if row is None:
        raise NotFound("list_not_found", f"no member list {list_id}")
    return ListOut(**row)


async def _locked(conn: Any, org_id: UUID, list_id: UUID) -> dict[str, Any]:
    if not await lists_db.lock_list(conn, org_id, list_id):
        raise NotFound("list_not_found", f"no member list {list_id}")
    row = await lists_db.get_list(conn, org_id, list_id)
    assert row is not None
    return row


async def _added(conn: Any, org_id: UUID, list_id: UUID, added: lists_db.Added,
                 rejected: list[LineRejected] | None = None, unusable: int = 0) -> Added:
    members = (await _list_out(conn, org_id, list_id)).members
    return Added(added=added.added, updated=added.updated, members=members, rejected=rejected or [],
                 unusable=unusable)


def _name_taken(name: str) -> Conflict:
    return Conflict("list_name_taken", f"name: the organisation already has a list called '{name}'")
