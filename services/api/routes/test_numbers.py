"""``/api/v1/settings/test-numbers``: the organisation's staff test numbers, the only numbers test sends
may text. Anyone signed in may list them (the composer offers them); admins add and remove them.

A number is read as every other number is (``phone_input.number_input`` with the organisation's default
prefix); adding one already on the list changes its label. The list holds at most ``MAX_TEST_NUMBERS``.
Every change answers with the whole list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import transaction
from services.api import audit, test_send_db
from services.api.audit import CallerDep
from services.api.deps import AdminDep, OrgDep, PoolDep
from services.api.errors import Conflict, NotFound
from services.api.phone_input import number_input
from services.api.test_send_limits import MAX_TEST_NUMBERS

router = APIRouter(prefix="/settings/test-numbers", tags=["settings"])


class TestNumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"phone": "(617) 555-0142", "label": "Sam's mobile"}]})

    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="whose number it is, as staff will recognise it")


class TestNumberOut(BaseModel):
    phone: str = Field(description="E.164")
    label: str
    added_by: str
    created_at: datetime


class TestNumbersOut(BaseModel):
    numbers: list[TestNumberOut]
    max_numbers: int = MAX_TEST_NUMBERS


def _test_numbers(rows: list[dict[str, Any]]) -> TestNumbersOut:
    return TestNumbersOut(numbers=[TestNumberOut.model_validate(row) for row in rows])


@router.get("", summary="The staff test numbers test sends may go to")
async def list_test_numbers(org: OrgDep, pool: PoolDep) -> TestNumbersOut:
    async with pool.acquire() as conn:
        return _test_numbers(await test_send_db.staff_test_numbers(conn, org.id))


@router.post("", summary="Add a staff test number (or change its label)")
async def add_test_number(body: TestNumberIn, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> TestNumbersOut:
    phone = number_input("phone", body.phone, admin.org.default_country_prefix)
    async with transaction(pool) as conn:
        if not await test_send_db.add_staff_test_number(conn, admin.org.id, phone, body.label, admin.actor,
                                                        MAX_TEST_NUMBERS):
            raise Conflict("test_numbers_full", f"the organisation already has {MAX_TEST_NUMBERS} staff test "
                           "numbers; remove one before adding another")
        await audit.record(conn, caller, "test_number.added", "test_number", phone,
                           after={"phone": phone, "label": body.label})
        return _test_numbers(await test_send_db.staff_test_numbers(conn, admin.org.id))


@router.delete("/{phone}", summary="Remove a staff test number")
async def remove_test_number(phone: str, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> TestNumbersOut:
    number = number_input("phone", phone, admin.org.default_country_prefix)
    async with transaction(pool) as conn:
        if not await test_send_db.remove_staff_test_number(conn, admin.org.id, number):
            raise NotFound("test_number_not_found", f"{number} is not one of the organisation's staff test numbers")
        await audit.record(conn, caller, "test_number.removed", "test_number", number, before={"phone": number})
        return _test_numbers(await test_send_db.staff_test_numbers(conn, admin.org.id))
