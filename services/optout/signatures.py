"""Who a webhook claims to be from, and whether its X-Twilio-Signature proves it (twilio.md §6).

The signature is checked with the twilio SDK's ``RequestValidator`` over the public URL Twilio was
given for the organisation's account (``sms_accounts.webhook_base_url``) plus the path and query as
received: behind a proxy, our own request URL is not the one Twilio signed.

Accounts are cached for ``ttl_s`` so the hot path makes no extra query. A signature that fails
against a cached token is checked once more against a fresh read (at most every ``refresh_s`` per
account), so a rotated auth token works at once without letting forged requests hammer the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from twilio.request_validator import RequestValidator

from services.optout.db import OptoutDb


@dataclass(frozen=True, slots=True)
class Account:
    org_id: UUID
    account_sid: str
    webhook_base_url: str
    validator: RequestValidator = field(repr=False)


def public_url(base_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: the configured base (which may carry a path prefix), our path, the raw query."""
    return base_url.rstrip("/") + path + (f"?{query}" if query else "")


class FormParams(dict[str, str]):
    """A form's fields: the last value of each name (what handlers read and what is stored), and
    ``getall`` with every value, which RequestValidator uses so that a repeated name is signed with each
    of its values, as Twilio does. (It tries ``getall`` first: a MultiDict without it costs an exception
    per field on every request.)"""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        return self._values[name]


def signature_valid(account: Account, url: str, params: FormParams, signature: str) -> bool:
    return bool(account.validator.validate(url, params, signature))


class AccountDirectory:
    """sms_accounts by Account SID, cached; ``None`` for an SID no organisation has."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        db: OptoutDb,
        *,
        ttl_s: float,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._db = db
        self._ttl_s = ttl_s
        self._refresh_s = refresh_s
        self._clock = clock
        self._cache: dict[str, Account | None] = {}
        self._fetched: dict[str, float] = {}

    async def get(self, account_sid: str) -> Account | None:
        fetched = self._fetched.get(account_sid)
        if fetched is not None and self._clock() - fetched < self._ttl_s:
            return self._cache[account_sid]
        return await self._load(account_sid)

    async def refreshed(self, account: Account) -> Account | None:
        """A fresh read of ``account`` if the cached one may be stale, else None (nothing new to try)."""
        if self._clock() - self._fetched.get(account.account_sid, 0.0) < self._refresh_s:
            return None
        fresh = await self._load(account.account_sid)
        if fresh is None or (fresh.validator.token, fresh.webhook_base_url) == (
            account.validator.token, account.webhook_base_url
        ):
            return None
        return fresh

    async def _load(self, account_sid: str) -> Account | None:
        async with self._pool.acquire() as conn:
            row = await self._db.account_by_sid(conn, account_sid)
        now = self._clock()
        account = None
        if row is not None:
            account = Account(row.org_id, row.account_sid, row.webhook_base_url, RequestValidator(row.auth_token))
        if len(self._cache) > 10_000:  # forged SIDs must not grow the cache without bound
            self._cache.clear()
            self._fetched.clear()
        self._cache[account_sid] = account
        self._fetched[account_sid] = now
        return account
