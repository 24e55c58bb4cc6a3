"""``/api/v1/settings/imis-writeback``: where opt-outs are written in iMIS, and a check of it (admins only).

The target is one of ``activity`` (``TEXTUNSUB`` activities, as iMIS Text Messenger writes them: the IQAs
built on that product keep excluding members who opted out), ``preference`` (``OptInFlag`` of the SMS
communication type, whose id is required) or ``panel`` (the ``TP_SmsPreferences`` panel, or the one
named). The opt-out service reads it for every write-back job (services/optout/writeback_targets.py).
``POST .../check`` signs in to the organisation's iMIS and reads the target's definition (the activity
types, the communication type or the panel), answering what was found and what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StringConstraints

from libs.common.db import Connection, Queries, transaction
from libs.common.imis import ImisSession
from libs.common.imis_target_check import WritebackTarget, check_target
from libs.common.secret_store import IMIS_PASSWORD
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PoolDep, SecretsDep, WebDep
from services.api.errors import InvalidInput, NotFound

QUERIES = Queries.load(Path(__file__).parent.parent / "imis_writeback.sql")

router = APIRouter(prefix="/settings/imis-writeback", tags=["settings"])

Target = WritebackTarget
# The same rules as migration 0004 (panel names) and 0046 (communication type ids).
PanelName = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
TypeId = Annotated[str, StringConstraints(
    strip_whitespace=True, pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")]

_IMIS_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class WritebackOut(BaseModel):
    linked: bool
    writeback_enabled: bool = False
    target: Target | None = None
    sms_panel: str | None = None
    sms_communication_type_id: str | None = None


class WritebackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Target | None = None
    sms_panel: PanelName | None = None
    sms_communication_type_id: TypeId | None = None


class CheckOut(BaseModel):
    target: Target
    ok: bool
    found: list[str]
    missing: list[str]


@router.get("", summary="Where opt-outs are written in iMIS")
async def get_writeback(admin: AdminDep, pool: PoolDep) -> WritebackOut:
    async with pool.acquire() as conn:
        return await writeback_out(conn, admin.org.id)


async def writeback_out(conn: Connection, org_id: UUID) -> WritebackOut:
    return _out(await _row(conn, org_id))


@router.patch("", summary="Choose where opt-outs are written in iMIS")
async def patch_writeback(body: WritebackPatch, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> WritebackOut:
    changes = body.model_dump(exclude_unset=True)
    for required in ("target", "sms_panel"):
        if required in changes and changes[required] is None:
            raise InvalidInput(required, "value_required", "may not be null")
    async with transaction(pool) as conn:
        if await QUERIES.fetchval(conn, "lock-imis-writeback", org_id=admin.org.id) is None:
            raise NotFound("imis_account_missing", "the organisation has no iMIS site set up")
        current = await _row(conn, admin.org.id)
        assert current is not None, "locked above"
        before = _out(current)
        merged = {"writeback_target": changes.get("target", current["writeback_target"]),
                  "sms_panel": changes.get("sms_panel", current["sms_panel"]),
                  "sms_communication_type_id": changes.get("sms_communication_type_id",
                                                           current["sms_communication_type_id"])}
        if merged["writeback_target"] == "preference" and merged["sms_communication_type_id"] is None:
            raise InvalidInput("sms_communication_type_id", "value_required",
                               "is required to write opt-outs as a communication preference")
        await QUERIES.execute(conn, "set-imis-writeback", org_id=admin.org.id, **merged)
        after = _out(await _row(conn, admin.org.id))
        await audit.record(conn, caller, "settings.imis_writeback_changed", "settings", admin.org.id,
                           before=before, after=after)
        return after


@router.post("/check", summary="Read the write-back target's definition from iMIS and say what is missing",
             responses={503: {"description": "iMIS did not answer; try again"}})
async def check_writeback(admin: AdminDep, pool: PoolDep, secrets: SecretsDep, web: WebDep) -> CheckOut:
    async with pool.acquire() as conn:
        row = await _row(conn, admin.org.id)
        if row is None:
            raise NotFound("imis_account_missing", "the organisation has no iMIS site set up")
        password = await secrets.open(conn, admin.org.id, IMIS_PASSWORD, row["password"])
    base_url = row["base_url"] or web.imis_base_url
    if base_url is None:
        raise NotFound("imis_account_missing", "the organisation's iMIS site has no address")
    async with web.imis_client(_IMIS_TIMEOUT) as http:
        session = ImisSession(http, base_url, row["username"], password)
        result = await check_target(session, row["writeback_target"], sms_panel=row["sms_panel"],
                                    sms_communication_type_id=row["sms_communication_type_id"])
    return CheckOut(target=row["writeback_target"], ok=result.ok, found=result.found, missing=result.missing)


async def _row(conn: Connection, org_id: UUID) -> dict[str, Any] | None:
    record = await QUERIES.fetchrow(conn, "imis-writeback", org_id=org_id)
    return None if record is None else dict(record)


def _out(row: dict[str, Any] | None) -> WritebackOut:
    if row is None:
        return WritebackOut(linked=False)
    return WritebackOut(linked=True, writeback_enabled=row["writeback_enabled"], target=row["writeback_target"],
                        sms_panel=row["sms_panel"], sms_communication_type_id=row["sms_communication_type_id"])
