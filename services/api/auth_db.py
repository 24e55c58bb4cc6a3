"""SQL for users, sessions and API keys (``auth.sql``). Functions take a connection; callers own transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from libs.common.db import Connection, Queries
from services.api import auth

QUERIES = Queries.load(Path(__file__).with_name("auth.sql"))

Row = dict[str, Any]


def _row(record: asyncpg.Record | None) -> Row | None:
    return None if record is None else dict(record)


# -- resolving a caller -----------------------------------------------------------------------


async def session_principal(conn: Connection, token: str) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "session-principal", token_hash=auth.token_hash(token)))


async def touch_session(conn: Connection, token: str) -> None:
    await QUERIES.execute(conn, "touch-session", token_hash=auth.token_hash(token),
                          idle_s=auth.SESSION_IDLE.total_seconds())


async def api_key_principal(conn: Connection, key: str) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "api-key-principal", key_hash=auth.token_hash(key)))


async def touch_api_key(conn: Connection, key_id: UUID) -> None:
    await QUERIES.execute(conn, "touch-api-key", key_id=key_id)


# -- signing in and out -----------------------------------------------------------------------


async def user_for_sign_in(conn: Connection, email: str) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "user-for-sign-in", email=email))


async def count_sign_in_attempt(conn: Connection, keys: list[str]) -> dict[str, int]:
    """Count one attempt against each key; return each key's attempts in its window, this one included."""
    window_s = auth.SIGN_IN_WINDOW.total_seconds()
    await QUERIES.execute(conn, "delete-old-sign-in-attempts", window_s=window_s)
    rows = await QUERIES.fetch(conn, "count-sign-in-attempt", keys=sorted(keys), window_s=window_s)
    return {r["key"]: r["attempts"] for r in rows}


async def clear_sign_in_attempts(conn: Connection, key: str) -> None:
    await QUERIES.execute(conn, "clear-sign-in-attempts", key=key)


async def refund_sign_in_attempt(conn: Connection, key: str) -> None:
    await QUERIES.execute(conn, "refund-sign-in-attempt", key=key)


async def record_sign_in(conn: Connection, user_id: UUID, new_hash: str | None) -> None:
    await QUERIES.execute(conn, "record-sign-in", user_id=user_id, new_hash=new_hash)


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # the cookie's value; only its hash is stored
    csrf_token: str


async def start_session(conn: Connection, user_id: UUID, org_id: UUID) -> NewSession:
    """A new session for a user who has just proved who they are; prunes a few expired ones."""
    session = NewSession(token=auth.new_token(), csrf_token=auth.new_token())
    await QUERIES.execute(conn, "delete-expired-sessions")
    await QUERIES.execute(
        conn, "insert-session", token_hash=auth.token_hash(session.token), user_id=user_id, org_id=org_id,
        csrf_token=session.csrf_token, idle_s=auth.SESSION_IDLE.total_seconds(),
        absolute_s=auth.SESSION_ABSOLUTE.total_seconds(),
    )
    return session


async def end_session(conn: Connection, token: str) -> None:
    await QUERIES.execute(conn, "delete-session", token_hash=auth.token_hash(token))


async def end_user_sessions(conn: Connection, user_id: UUID) -> None:
    await QUERIES.execute(conn, "delete-user-sessions", user_id=user_id)


# -- users ------------------------------------------------------------------------------------


async def list_users(conn: Connection, org_id: UUID, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = [dict(r) for r in await QUERIES.fetch(conn, "list-users", org_id=org_id, limit=limit, offset=offset)]
    total = rows[0]["total"] if rows else 0
    return [{k: v for k, v in r.items() if k != "total"} for r in rows], total


async def get_user(conn: Connection, org_id: UUID, user_id: UUID) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "get-user", org_id=org_id, user_id=user_id))


async def lock_user(conn: Connection, org_id: UUID, user_id: UUID) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "lock-user", org_id=org_id, user_id=user_id))


async def insert_user(
    conn: Connection, org_id: UUID, email: str, name: str, password_hash: str, role: str
) -> UUID | None:
    """The new user's id, or None when the address is already in use (in any organisation)."""
    user_id: UUID | None = await QUERIES.fetchval(conn, "insert-user", org_id=org_id, email=email, user_name=name,
                                                  password_hash=password_hash, role=role)
    return user_id


async def update_user(conn: Connection, org_id: UUID, user_id: UUID, fields: Row) -> None:
    await QUERIES.execute(conn, "update-user", org_id=org_id, user_id=user_id, user_name=fields["name"],
                          role=fields["role"], active=fields["active"])


async def set_password(conn: Connection, org_id: UUID, user_id: UUID, password_hash: str) -> None:
    await QUERIES.execute(conn, "set-password", org_id=org_id, user_id=user_id, password_hash=password_hash)


async def count_active_admins(conn: Connection, org_id: UUID) -> int:
    admins: int = await QUERIES.fetchval(conn, "count-active-admins", org_id=org_id)
    return admins


# -- API keys ---------------------------------------------------------------------------------


async def list_api_keys(conn: Connection, org_id: UUID) -> list[Row]:
    return [dict(r) for r in await QUERIES.fetch(conn, "list-api-keys", org_id=org_id)]


async def insert_api_key(
    conn: Connection, org_id: UUID, name: str, role: str, actor: str, expires_at: datetime | None = None
) -> tuple[Row, str]:
    """The stored key (without its secret) and the key itself, which is shown once and never again."""
    key = auth.new_api_key()
    row = await QUERIES.fetchrow(conn, "insert-api-key", org_id=org_id, key_name=name, prefix=key.prefix,
                                 key_hash=key.key_hash, role=role, actor=actor, expires_at=expires_at)
    assert row is not None
    return dict(row), key.key


async def revoke_api_key(conn: Connection, org_id: UUID, key_id: UUID) -> Row | None:
    return _row(await QUERIES.fetchrow(conn, "revoke-api-key", org_id=org_id, key_id=key_id))
