"""Who a webhook claims to be from, and whether its X-Twilio-Signature proves it (docs/twilio.md#webhook-signatures).

The signature is checked with the twilio SDK's ``RequestValidator`` over the public URL Twilio was
given for the organisation's account (``sms_accounts.webhook_base_url``) plus the path and query as
received: behind a proxy, our own request URL is not the one Twilio signed.

Twilio signs with one of two secrets. Without ``X-Twilio-Webhooks-Signature-Settings`` it is the account's
auth token and HMAC-SHA1. With it (``key=<SharedKey id>,algorithm=HMAC_SHA1|HMAC_SHA256``) it is the
secret of that SharedKey, which must be the one the organisation configured, with the algorithm named
there (read by the SDK's ``get_signature_algorithm``). ``signature_refusal`` says which rule failed.

Accounts are cached for ``ttl_s`` so the hot path makes no extra query. A signature that fails
against a cached token is checked once more against a fresh read (at most every ``refresh_s`` per
account), so a rotated auth token or a new SharedKey works at once without letting forged requests hammer the database.

Stale if error: when PostgreSQL is briefly unavailable (libs/common/outages.py), the last account read
for an SID keeps being served, so webhooks are still verified, and made durable in Kafka, during an
outage; the database is asked again at most every ``outage_retry_s``. A revoked token thus stops
validating within ``ttl_s`` while PostgreSQL is up, and once it is back. An SID never read raises.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse
from uuid import UUID

import asyncpg
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    RequestValidator,
    add_port,
    compare,
    get_signature_algorithm,
    remove_port,
)

from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE
from services.optout.db import OptoutDb

log = get_logger(__name__)

SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
SUPPORTED_ALGORITHMS = frozenset({HMAC_SHA1, HMAC_SHA256})  # what the installed SDK computes


@dataclass(frozen=True, slots=True)
class SharedKey:
    key_id: str
    validator: RequestValidator = field(repr=False)


@dataclass(frozen=True, slots=True)
class Account:
    org_id: UUID
    account_sid: str
    webhook_base_url: str
    validator: RequestValidator = field(repr=False)
    shared_key: SharedKey | None = None

    def secrets(self) -> tuple[object, ...]:
        """What a signature is checked with: a fresh read that changes none of these has nothing new to try."""
        key = self.shared_key
        return (self.validator.token, self.webhook_base_url,
                None if key is None else (key.key_id, key.validator.token))


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


def shared_key_id(settings_header: str) -> str:
    """The ``key=`` of ``X-Twilio-Webhooks-Signature-Settings`` (``""`` when it names none)."""
    for part in settings_header.split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "key":
            return value.strip()
    return ""


def proves(validator: RequestValidator, url: str, params: FormParams, signature: str,
           algorithm: str | None = None) -> bool:
    """What ``validator.validate`` answers for a form, with one HMAC instead of two on the usual path.

    Twilio signs the URL either without or with its port; the SDK always computes both. Here the form the
    configured URL has is tried first, the other only when it does not match. (validate's body hash
    applies to JSON bodies only.)
    """
    parsed = urlparse(url)
    forms = (add_port(parsed), remove_port(parsed)) if parsed.port else (remove_port(parsed), add_port(parsed))
    return any(compare(validator.compute_signature(form, params, algorithm), signature) for form in forms)


def signature_refusal(account: Account, url: str, params: FormParams, signature: str,
                      settings_header: str | None) -> str | None:
    """None when ``signature`` proves the request is the account's; else the reason code of the refusal."""
    if not settings_header:  # the SDK reads a missing or empty header as the auth token's signature
        return None if proves(account.validator, url, params, signature) else "signature_invalid"
    key = account.shared_key
    if key is None:
        return "shared_key_not_configured"
    if shared_key_id(settings_header) != key.key_id:
        return "shared_key_unknown"
    algorithm = get_signature_algorithm(settings_header)
    if algorithm.upper() not in SUPPORTED_ALGORITHMS:
        return "signature_algorithm_unsupported"
    return None if proves(key.validator, url, params, signature, algorithm) else "signature_invalid"


class AccountDirectory:
    """sms_accounts by Account SID, cached; ``None`` for an SID no organisation has."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        db: OptoutDb,
        *,
        ttl_s: float,
        refresh_s: float,
        outage_retry_s: float = 1.0,
        load_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._db = db
        self._ttl_s = ttl_s
        self._refresh_s = refresh_s
        self._outage_retry_s = outage_retry_s
        self._load_timeout_s = load_timeout_s
        self._clock = clock
        self._cache: dict[str, Account | None] = {}
        self._fetched: dict[str, float] = {}
        self._unavailable_until = float("-inf")  # while PostgreSQL failed lately, serve what is cached
        self._loading: dict[str, asyncio.Task[Account | None]] = {}

    async def get(self, account_sid: str) -> Account | None:
        """Raises what PostgreSQL raised (POSTGRES_RETRYABLE) only for an SID with nothing cached."""
        fetched = self._fetched.get(account_sid)
        if fetched is not None and self._clock() - fetched < self._ttl_s:
            return self._cache[account_sid]
        if fetched is not None and self._clock() < self._unavailable_until:
            return self._cache[account_sid]
        try:
            return await self._load(account_sid)
        except POSTGRES_RETRYABLE:
            if fetched is None:
                raise
            return self._cache[account_sid]

    async def refreshed(self, account: Account) -> Account | None:
        """A fresh read of ``account`` if the cached one may be stale, else None (nothing new to try)."""
        if self._clock() - self._fetched.get(account.account_sid, 0.0) < self._refresh_s:
            return None
        if self._clock() < self._unavailable_until:
            return None
        try:
            fresh = await self._load(account.account_sid)
        except POSTGRES_RETRYABLE:
            return None
        if fresh is None or fresh.secrets() == account.secrets():
            return None
        return fresh

    async def _load(self, account_sid: str) -> Account | None:
        """One read per SID at a time, shared by the requests that wait for it."""
        task = self._loading.get(account_sid)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(account_sid))
            self._loading[account_sid] = task
            task.add_done_callback(lambda _: self._loading.pop(account_sid, None))
        return await asyncio.shield(task)

    async def _read(self, account_sid: str) -> Account | None:
        try:
            async with asyncio.timeout(self._load_timeout_s), self._pool.acquire() as conn:
                row = await self._db.account_by_sid(conn, account_sid)
        except POSTGRES_RETRYABLE as exc:
            if self._clock() >= self._unavailable_until:
                log.warning("accounts.serving_stale", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                             "retry_s": self._outage_retry_s})
            self._unavailable_until = self._clock() + self._outage_retry_s
            raise
        now = self._clock()
        account = None
        if row is not None:
            shared_key = None
            if row.webhook_shared_key_id is not None and row.webhook_shared_key_secret is not None:
                shared_key = SharedKey(row.webhook_shared_key_id, RequestValidator(row.webhook_shared_key_secret))
            account = Account(row.org_id, row.account_sid, row.webhook_base_url, RequestValidator(row.auth_token),
                              shared_key)
        if len(self._cache) > 10_000:  # forged SIDs must not grow the cache without bound
            for sid in [sid for sid, known in self._cache.items() if known is None]:
                del self._cache[sid], self._fetched[sid]  # real accounts stay, to be served in an outage
            if len(self._cache) > 10_000:
                self._cache.clear()
                self._fetched.clear()
        self._cache[account_sid] = account
        self._fetched[account_sid] = now
        return account
