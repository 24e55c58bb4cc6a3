"""``/api/v1/me``, ``/api/v1/users`` and ``/api/v1/api-keys``: who is signed in, the organisation's users
and its integration keys. Users and keys are for admins only.

An organisation always keeps one active admin: demoting or deactivating the last one is refused (409
``last_admin``). Deactivating a user or changing their password ends their sessions at once. An API
key is shown once, in the answer that creates it; after that only its prefix is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import Connection, transaction
from services.api import audit, auth, auth_db
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PageOffset, PoolDep, PrincipalDep
from services.api.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.api.password_work import PASSWORDS

router = APIRouter(tags=["users"])

Role = auth.Role
# An API key never approves a campaign (services/api/deps.py, Principal.may_approve): it has no approver role.
KeyRole = Literal["admin", "staff"]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Password = Annotated[str, StringConstraints(max_length=auth.MAX_PASSWORD_LENGTH)]


class MeOut(BaseModel):
    organisation_id: UUID
    organisation: str
    role: Role
    via: Literal["session", "api_key"]
    actor: str
    name: str
    time_zone: str


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: Role
    active: bool
    last_signed_in_at: datetime | None
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: PersonName = ""
    role: Role = "staff"
    password: Password = Field(description=f"at least {auth.MIN_PASSWORD_LENGTH} characters")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PersonName | None = None
    role: Role | None = None
    active: bool | None = None


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str = Field(description="the first characters after tpk_, to tell keys apart")
    role: KeyRole
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = Field(description="null: the key works until it is revoked")


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="send as 'Authorization: Bearer <key>'; shown only this once")


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    role: KeyRole = "staff"
    expires_at: AwareDatetime | None = Field(default=None, description="when the key stops working; null: never")


@router.get("/me", summary="Who is calling, for which organisation")
async def me(principal: PrincipalDep) -> MeOut:
    return MeOut(organisation_id=principal.org.id, organisation=principal.org.name, role=principal.role,
                 via=principal.via, actor=principal.actor, name=principal.display_name,
                 time_zone=principal.org.time_zone)


@router.get("/users", summary="The organisation's users")
async def list_users(
    admin: AdminDep, pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: PageOffset = 0,
) -> UserPage:
    async with pool.acquire() as conn:
        rows, total = await auth_db.list_users(conn, admin.org.id, limit, offset)
    return UserPage(items=[UserOut(**r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/users", status_code=201, summary="Add a user with a first password")
async def create_user(body: UserCreate, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> UserOut:
    password_hash = await _hash(body.password)
    async with transaction(pool) as conn:
        user_id = await auth_db.insert_user(conn, admin.org.id, body.email, body.name, password_hash, body.role)
        if user_id is None:
            raise Conflict("email_in_use", f"{body.email} already has an account")
        created = await _user(conn, admin.org.id, user_id)
        await audit.record(conn, caller, "user.created", "user", user_id, after=created)
        return created


@router.patch("/users/{user_id}", summary="Change a user's name, role, or whether they can sign in")
async def update_user(user_id: UUID, body: UserUpdate, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> UserOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    async with transaction(pool) as conn:
        locked = await auth_db.lock_user(conn, admin.org.id, user_id)
        if locked is None:
            raise NotFound("user_not_found", f"no user {user_id}")
        current = await auth_db.get_user(conn, admin.org.id, user_id)
        merged = (current or {}) | changes
        stops_being_admin = locked["role"] == "admin" and locked["active"] and (
            merged["role"] != "admin" or not merged["active"])
        if stops_being_admin and await auth_db.count_active_admins(conn, admin.org.id) <= 1:
            raise Conflict("last_admin", "the organisation needs at least one active admin")
        await auth_db.update_user(conn, admin.org.id, user_id, merged)
        if not merged["active"]:
            await auth_db.end_user_sessions(conn, user_id)
        updated = await _user(conn, admin.org.id, user_id)
        await audit.record(conn, caller, "user.changed", "user", user_id, before=UserOut(**(current or {})),
                           after=updated)
        return updated


@router.put("/users/{user_id}/password", status_code=204, summary="Set a user's password (ends their sessions)")
async def set_password(user_id: UUID, body: PasswordIn, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> None:
    password_hash = await _hash(body.password)
    async with transaction(pool) as conn:
        if await auth_db.lock_user(conn, admin.org.id, user_id) is None:
            raise NotFound("user_not_found", f"no user {user_id}")
        await auth_db.set_password(conn, admin.org.id, user_id, password_hash)
        await auth_db.end_user_sessions(conn, user_id)
        await audit.record(conn, caller, "user.password_set", "user", user_id)


@router.get("/api-keys", summary="The organisation's API keys (never the keys themselves)")
async def list_api_keys(admin: AdminDep, pool: PoolDep) -> list[ApiKeyOut]:
    async with pool.acquire() as conn:
        return [ApiKeyOut(**r) for r in await auth_db.list_api_keys(conn, admin.org.id)]


@router.post("/api-keys", status_code=201, summary="Create an API key; the answer is the only time it is shown")
async def create_api_key(body: ApiKeyCreate, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> ApiKeyCreated:
    if body.role == "admin" and admin.via != "session":
        raise Forbidden("admin_key_needs_signed_in_admin",
                        "an admin API key can only be created by an admin signed in to the dashboard, not by a key")
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise InvalidInput("expires_at", "expiry_in_the_past", "the expiry must be in the future")
    async with transaction(pool) as conn:
        row, key = await auth_db.insert_api_key(conn, admin.org.id, body.name, body.role, admin.actor,
                                                body.expires_at)
        await audit.record(conn, caller, "api_key.created", "api_key", row["id"], after=ApiKeyOut(**row))
    return ApiKeyCreated(**row, key=key)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key (at once, for good)")
async def revoke_api_key(key_id: UUID, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> ApiKeyOut:
    async with transaction(pool) as conn:
        row = await auth_db.revoke_api_key(conn, admin.org.id, key_id)
        if row is None:
            raise NotFound("api_key_not_found", f"no API key {key_id}")
        revoked = ApiKeyOut(**row)
        await audit.record(conn, caller, "api_key.revoked", "api_key", key_id, after=revoked)
    return revoked


async def _hash(password: str) -> str:
    problem = auth.password_problem(password)
    if problem is not None:
        raise InvalidInput("password", "password_weak", problem)
    return await PASSWORDS.hash(password)


async def _user(conn: Connection, org_id: UUID, user_id: UUID) -> UserOut:
    row = await auth_db.get_user(conn, org_id, user_id)
    assert row is not None
    return UserOut(**row)
