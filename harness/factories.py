"""Rows for tests and benchmarks: organisations, their Twilio and iMIS accounts, senders, users, API keys,
campaigns and runs, each made by one function.

Every factory takes a connection or a pool and the columns that matter to the caller; any other column
keeps the schema's default. A ``dict`` or ``list`` value of a json column is stored as JSON, and an
:class:`Sql` value is an SQL expression (``Sql("now() - interval '1 day'")``).

    org_id = await make_org(pool, time_zone="Europe/London")
    await make_sms_account(pool, org_id, max_segments=100)          # sealed, as deploy.migrate would
    sender_id = await make_sender(pool, org_id, "+18885550100", is_default=True)
    campaign_id = await make_campaign(pool, org_id, state="sending", audience={"kind": "iqa", "query": "q"})
    run_id = await make_run(pool, org_id, campaign_id, state="sending")
"""

from __future__ import annotations

import functools
import json
import secrets
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from harness.credentials import seal_credentials
from libs.common.db import Connection
from services.api import auth, auth_db
from standins.twilio.config import TwilioConfig

Db = Connection | asyncpg.Pool
PASSWORD = "correct horse battery staple"
_JSON_COLUMNS = frozenset({"audience", "schedule", "merge_values", "exclusions"})


class Sql(str):
    """A column value written as an SQL expression instead of a parameter."""


NOW = Sql("now()")


async def _insert(db: Db, table: str, columns: dict[str, Any]) -> None:
    sql, values = _statement(table, columns)
    await db.execute(sql, *values)


async def _insert_id(db: Db, table: str, columns: dict[str, Any]) -> uuid.UUID:
    sql, values = _statement(table, columns)
    row_id = await db.fetchval(f"{sql} RETURNING id", *values)
    assert isinstance(row_id, uuid.UUID)
    return row_id


def _statement(table: str, columns: dict[str, Any]) -> tuple[str, list[Any]]:
    """INSERT of one row of ``columns``; None values are left out, so the schema's default applies."""
    names: list[str] = []
    values: list[Any] = []
    places: list[str] = []
    for name, value in columns.items():
        if value is None:
            continue
        names.append(name)
        if isinstance(value, Sql):
            places.append(str(value))
            continue
        values.append(json.dumps(value) if name in _JSON_COLUMNS and isinstance(value, dict | list) else value)
        places.append(f"${len(values)}::jsonb" if name in _JSON_COLUMNS and isinstance(value, dict | list)
                      else f"${len(values)}")
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(places)})", values


def new_slug(kind: str = "org") -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def fresh_sid(kind: str = "SM") -> str:
    """A Twilio SID of ``kind`` (AC account, SM message, MG messaging service...) no other row uses."""
    return kind + secrets.token_hex(16)


async def make_org(db: Db, *, slug: str | None = None, name: str | None = None, **columns: Any) -> uuid.UUID:
    """An organisation; ``name`` defaults to its slug, which defaults to a fresh one."""
    slug = slug or new_slug()
    return await _insert_id(db, "organisations", {"slug": slug, "name": name or slug, **columns})


async def make_sms_account(db: Db, org_id: uuid.UUID, *, account_sid: str | None = None, auth_token: str = "token",
                           webhook_base_url: str = "https://hooks.example.org", **columns: Any) -> str:
    """The organisation's Twilio account, its credentials sealed; returns the account SID."""
    account_sid = account_sid or fresh_sid("AC")
    await _insert(db, "sms_accounts", {"org_id": org_id, "account_sid": account_sid, "auth_token": auth_token,
                                       "webhook_base_url": webhook_base_url, **columns})
    await seal_credentials(db)
    return account_sid


async def make_standin_account(db: Db, org_id: uuid.UUID, config: TwilioConfig, *, auth_token: str | None = None,
                               with_api_key: bool = True, webhook_base_url: str = "http://127.0.0.1:9") -> str:
    """The organisation's Twilio account is the stand-in's (``config``; its API key too, unless not
    ``with_api_key``), sealed. One organisation per account: earlier tests' organisations give it up."""
    await db.execute("DELETE FROM sms_accounts WHERE account_sid = $1", config.account_sid)
    keys = {"api_key_sid": config.api_key_sid, "api_key_secret": config.api_key_secret} if with_api_key else {}
    return await make_sms_account(db, org_id, account_sid=config.account_sid,
                                  auth_token=auth_token or config.auth_token, webhook_base_url=webhook_base_url, **keys)


async def make_imis_account(db: Db, org_id: uuid.UUID, *, base_url: str | None = None,
                            username: str = "SMS_INTEGRATION", password: str = "standin-password",
                            writeback_target: str = "panel", sms_communication_type_id: str | None = None,
                            query_endpoint: str = "iqa") -> None:
    """The organisation's iMIS account (the stand-in's credentials), sealed. It writes back to the panel
    unless ``writeback_target`` says otherwise (a new account's own default is ``activity``);
    ``query_endpoint`` "query" runs its queries through /api/Query."""
    await _insert(db, "imis_accounts", {"org_id": org_id, "base_url": base_url, "username": username,
                                        "password": password, "writeback_target": writeback_target,
                                        "sms_communication_type_id": sms_communication_type_id,
                                        "query_endpoint": query_endpoint})
    await seal_credentials(db)


async def make_sender(db: Db, org_id: uuid.UUID, address: str | None = None, **columns: Any) -> uuid.UUID:
    """A sender of the organisation; ``address`` defaults to a random toll-free number."""
    address = address or f"+1888{secrets.randbelow(10**7):07d}"
    return await _insert_id(db, "senders", {"org_id": org_id, "address": address, **columns})


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    """One hash per password and process: hashing is slow on purpose."""
    return auth.hash_password(password)


async def make_user(db: Db, org_id: uuid.UUID, *, role: str = "staff", email: str | None = None, name: str = "",
                    password: str = PASSWORD) -> tuple[uuid.UUID, str]:
    """A user of ``role`` who signs in with ``password``; returns (id, e-mail address)."""
    email = email or f"{role}-{uuid.uuid4().hex[:10]}@example.org"
    user_id = await _insert_id(db, "users", {"org_id": org_id, "email": email, "name": name,
                                             "password_hash": password_hash(password), "role": role})
    return user_id, email


async def make_api_key(db: Db, org_id: uuid.UUID, *, name: str = "iMIS sync", role: str = "staff",
                       actor: str = "test") -> str:
    """An API key of ``role``, stored as the API stores one; returns the key to send."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await make_api_key(conn, org_id, name=name, role=role, actor=actor)
    _, key = await auth_db.insert_api_key(db, org_id, name, role, actor)
    return key


async def make_campaign(db: Db, org_id: uuid.UUID, *, name: str = "Renewals", body: str = "Hi",
                        **columns: Any) -> uuid.UUID:
    return await _insert_id(db, "campaigns", {"org_id": org_id, "name": name, "body": body, **columns})


async def make_run(db: Db, org_id: uuid.UUID, campaign_id: uuid.UUID, *,
                   occurrence_at: datetime | Sql = NOW, **columns: Any) -> uuid.UUID:
    """A run of the campaign, due at ``occurrence_at`` (the statement's ``now()`` by default)."""
    return await _insert_id(db, "campaign_runs", {"org_id": org_id, "campaign_id": campaign_id,
                                                  "occurrence_at": occurrence_at, **columns})
