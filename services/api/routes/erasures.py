"""``/api/v1/erasures``: erase one member for a GDPR request (admins only), by iMIS id or by phone number.

The answer says what was erased, in rows per table; a suppression the member had stays, under the
number's keyed digest, so they are still never texted (services/api/erasure.py has the rules). Erasing
the same member again answers ``already_erased: true`` with nothing more erased. The audit log records
the erasure with its counts and the subject's digest only: an erasure log must not name the member.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import transaction
from services.api import audit, erasure
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PoolDep, SecretsDep
from services.api.errors import InvalidInput
from services.api.phone_input import number_input

router = APIRouter(prefix="/erasures", tags=["erasures"])

# As member_phone_index.member_id (migration 0004).
ImisId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    imis_id: ImisId | None = Field(default=None, description="the member's iMIS id (give this or phone)")
    phone: Phone | None = Field(default=None, description="a number as typed; read with the default country prefix")


class ErasureOut(BaseModel):
    erased: dict[str, int] = Field(description="rows erased or removed, per table")
    numbers: int = Field(description="phone numbers of the member that were erased")
    suppressions_kept: int = Field(description="suppressions kept under the numbers' digests: still never texted")
    already_erased: bool = Field(description="true when an earlier erasure had already removed everything")


@router.post("", summary="Erase one member's personal data (admins); suppressions stay in force")
async def erase(body: ErasureIn, admin: AdminDep, caller: CallerDep, pool: PoolDep, secrets: SecretsDep) -> ErasureOut:
    org = admin.org
    if body.imis_id is None and body.phone is None:
        raise InvalidInput("imis_id", "member_missing", "Give the member's iMIS ID or their phone number.")
    if body.imis_id is not None and body.phone is not None:
        raise InvalidInput("phone", "member_ambiguous", "Give the iMIS ID or the phone number, not both: erase "
                           "one member at a time.")
    phone = number_input("phone", body.phone, org.default_country_prefix) if body.phone is not None else None
    if body.imis_id is not None and not body.imis_id.isprintable():
        raise InvalidInput("imis_id", "imis_id_invalid", "An iMIS id is printable text, like 10234.")
    async with transaction(pool) as conn:
        result = await erasure.erase_member(conn, secrets, org.id, org.default_country_prefix, erased_by=admin.actor,
                                            imis_id=body.imis_id, phone=phone)
        await audit.record(conn, caller, "member.erased", "member", None,
                           detail={"by": "imis_id" if body.imis_id is not None else "phone",
                                   "counts": result.counts, "suppressions_kept": result.suppressions_kept,
                                   "already_erased": result.already_erased})
    return ErasureOut(erased=result.counts, numbers=result.numbers, suppressions_kept=result.suppressions_kept,
                      already_erased=result.already_erased)
