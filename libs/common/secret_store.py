"""The one way credentials are written and read: sealed per organisation and column (libs/common/envelope.py).

    store = SecretStore.from_settings(settings)
    sealed = await store.seal(conn, org_id, AUTH_TOKEN, "the token")     # what the INSERT/UPDATE stores
    token = await store.open(conn, org_id, AUTH_TOKEN, row["auth_token"])

Every writer seals through :meth:`SecretStore.seal` and every reader opens through :meth:`SecretStore.open`.
An organisation's data key is created with its first secret. Unwrapped data keys are cached, by
organisation and id, for the life of the process: a data key never changes (a rotation re-wraps it and it
stays the same key), so the cache cannot go stale; the sealed value itself is read each time.

:func:`seal_plain_secrets` encrypts rows stored before migration 0022 (``python -m deploy.migrate``);
:func:`rewrap_data_keys` re-wraps every data key with the current key-encryption key
(``python -m deploy.secrets rotate``). Both are idempotent and safe to run while services are up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import asyncpg

from libs.common.db import Connection, Queries
from libs.common.envelope import (
    Keyring,
    SecretUnreadable,
    digest_key,
    is_sealed,
    new_data_key,
    number_digest,
    open_sealed,
    seal,
    sealed_key_id,
)
from libs.common.logging import get_logger
from libs.common.settings import Settings

log = get_logger(__name__)
QUERIES: Final = Queries.load(Path(__file__).with_name("secret_store.sql"))


@dataclass(frozen=True)
class SecretColumn:
    """A column holding a sealed credential; its name is part of each value's associated data."""

    name: str


AUTH_TOKEN: Final = SecretColumn("sms_accounts.auth_token")
API_KEY_SECRET: Final = SecretColumn("sms_accounts.api_key_secret")
WEBHOOK_SHARED_KEY_SECRET: Final = SecretColumn("sms_accounts.webhook_shared_key_secret")
IMIS_PASSWORD: Final = SecretColumn("imis_accounts.password")
WEBHOOK_ENDPOINT_SECRET: Final = SecretColumn("webhook_endpoints.secret")


def keyring_from_settings(settings: Settings) -> Keyring:
    """The current KEK from TEXTPULSE_SECRET_KEY_FILE or TEXTPULSE_SECRET_KEY, old ones from ..._PREVIOUS."""
    current = settings.secret_key_file.read_text(encoding="utf-8").strip() if settings.secret_key_file \
        else settings.secret_key.get_secret_value()
    previous = settings.secret_key_previous.get_secret_value() if settings.secret_key_previous else ""
    return Keyring.from_secrets(current, [s.strip() for s in previous.split(",") if s.strip()])


class SecretStore:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._data_keys: dict[tuple[uuid.UUID, str], bytes] = {}
        self._digest_keys: dict[uuid.UUID, bytes] = {}  # an organisation's data key never changes

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretStore:
        return cls(keyring_from_settings(settings))

    async def check(self, conn: Connection) -> None:
        """Prepare the statements; warn (``secrets.key_unknown``) if data keys are wrapped by a key this
        process does not hold: their credentials will not open (a wrong TEXTPULSE_SECRET_KEY, or a rotation
        whose old key is missing from TEXTPULSE_SECRET_KEY_PREVIOUS)."""
        await QUERIES.check(conn)
        unknown = {k: n for k, n in (await data_keys_by_kek(conn)).items() if not self.keyring.knows(k)}
        if unknown:
            log.warning("secrets.key_unknown", extra={"current_key": self.keyring.current_id, "unknown_keys": unknown})

    async def seal(self, conn: Connection, org_id: uuid.UUID, column: SecretColumn, plaintext: str) -> str:
        """``plaintext`` sealed for this organisation and column, creating the organisation's data key."""
        dek_id, dek = await self._org_data_key(conn, org_id)
        return seal(dek, dek_id, plaintext, org_id=org_id, column=column.name)

    async def open(self, conn: Connection, org_id: uuid.UUID, column: SecretColumn, stored: str) -> str:
        """The plaintext of a sealed value. Raises SecretUnreadable (without the value) if it does not open."""
        dek_id = sealed_key_id(stored, column=column.name)
        dek = self._data_keys.get((org_id, dek_id))
        if dek is None:
            row = await QUERIES.fetchrow(conn, "data-key", dek_id=dek_id)
            if row is None or row["org_id"] != org_id:
                raise SecretUnreadable("data_key_missing", f"{column.name} of organisation {org_id} names "
                                       f"data key {dek_id}, which that organisation does not have")
            dek = self._unwrap(row["wrapped"], row["kek_id"], org_id, dek_id)
        return open_sealed(dek, stored, org_id=org_id, column=column.name)

    async def digests(self, conn: Connection, org_id: uuid.UUID, values: Iterable[str], *,
                      create_key: bool = False) -> dict[str, str] | None:
        """{value: its keyed digest} under the organisation's digest key (envelope.number_digest).

        None when the organisation has no data key and ``create_key`` is false: nothing of it was ever
        erased, so no digest of it can be stored anywhere. Erasure passes ``create_key``."""
        key = self._digest_keys.get(org_id)
        if key is None:
            if not create_key and await QUERIES.fetchrow(conn, "org-data-key", org_id=org_id) is None:
                return None
            _, dek = await self._org_data_key(conn, org_id)
            key = self._digest_keys.setdefault(org_id, digest_key(dek, org_id))
        return {value: number_digest(key, value) for value in values}

    async def _org_data_key(self, conn: Connection, org_id: uuid.UUID) -> tuple[str, bytes]:
        row = await QUERIES.fetchrow(conn, "org-data-key", org_id=org_id)
        if row is None:
            dek_id, dek = new_data_key()
            wrapped = self.keyring.wrap(dek, org_id=org_id, dek_id=dek_id)
            await QUERIES.execute(conn, "insert-data-key", dek_id=dek_id, org_id=org_id,
                                  kek_id=self.keyring.current_id, wrapped=wrapped)
            row = await QUERIES.fetchrow(conn, "org-data-key", org_id=org_id)
            assert row is not None  # inserted, or inserted by the writer we waited for
        cached = self._data_keys.get((org_id, row["id"]))
        return row["id"], cached or self._unwrap(row["wrapped"], row["kek_id"], org_id, row["id"])

    def _unwrap(self, wrapped: bytes, kek_id: str, org_id: uuid.UUID, dek_id: str) -> bytes:
        dek = self.keyring.unwrap(wrapped, kek_id=kek_id, org_id=org_id, dek_id=dek_id)
        self._data_keys[(org_id, dek_id)] = dek
        return dek


async def seal_plain_secrets(conn: Connection, store: SecretStore) -> int:
    """Encrypt every credential still stored in plain text; return how many values were sealed.

    Idempotent: sealed values are left as they are. One transaction, with the rows locked, so a writer
    saving a new credential meanwhile waits and is not overwritten.
    """
    sealed = 0
    async with conn.transaction():
        for row in await QUERIES.fetch(conn, "plain-sms-secrets"):
            columns = {"auth_token": AUTH_TOKEN, "api_key_secret": API_KEY_SECRET,
                       "webhook_shared_key_secret": WEBHOOK_SHARED_KEY_SECRET}
            org_id, values = row["org_id"], {field: row[field] for field in columns}
            plain = [(f, c) for f, c in columns.items() if values[f] is not None and not is_sealed(values[f])]
            for field, column in plain:
                values[field] = await store.seal(conn, org_id, column, values[field])
            if plain:
                await QUERIES.execute(conn, "seal-sms-secrets", org_id=org_id, **values)
                sealed += len(plain)
        for row in await QUERIES.fetch(conn, "plain-imis-passwords"):
            if not is_sealed(row["password"]):
                password = await store.seal(conn, row["org_id"], IMIS_PASSWORD, row["password"])
                await QUERIES.execute(conn, "seal-imis-password", org_id=row["org_id"], password=password)
                sealed += 1
    return sealed


async def rewrap_data_keys(conn: Connection, keyring: Keyring, *, batch: int = 100) -> int:
    """Re-wrap every data key not wrapped by the current KEK; return how many were re-wrapped.

    Each batch is its own short transaction, so readers (which only read ``data_keys``) never wait long,
    and a key is readable throughout: under the old KEK before its row changes, under the new one after.
    Raises SecretUnreadable if a key is wrapped by a KEK the keyring does not hold (list it in
    TEXTPULSE_SECRET_KEY_PREVIOUS).
    """
    rewrapped = 0
    while True:
        async with conn.transaction():
            rows = await QUERIES.fetch(conn, "data-keys-wrapped-by-others", kek_id=keyring.current_id, batch=batch)
            for row in rows:
                dek = keyring.unwrap(row["wrapped"], kek_id=row["kek_id"], org_id=row["org_id"], dek_id=row["id"])
                await QUERIES.execute(conn, "rewrap-data-key", dek_id=row["id"], kek_id=keyring.current_id,
                                      wrapped=keyring.wrap(dek, org_id=row["org_id"], dek_id=row["id"]))
        rewrapped += len(rows)
        if len(rows) < batch:
            return rewrapped


async def data_keys_by_kek(conn: Connection) -> dict[str, int]:
    return {row["kek_id"]: row["keys"] for row in await QUERIES.fetch(conn, "data-keys-by-kek")}


@dataclass(frozen=True)
class TwilioLogin:
    """How calls to Twilio authenticate: with the API key when the account has one, else the auth token."""

    account_sid: str
    username: str  # the API key SID, or the account SID
    password: str = field(repr=False)  # the API key secret, or the auth token


async def open_twilio_login(conn: Connection, store: SecretStore, org_id: uuid.UUID,
                            account: asyncpg.Record) -> TwilioLogin:
    """The login from an ``sms_accounts`` row (account_sid, auth_token, api_key_sid, api_key_secret)."""
    if account["api_key_sid"] is not None:
        secret = await store.open(conn, org_id, API_KEY_SECRET, account["api_key_secret"])
        return TwilioLogin(account["account_sid"], account["api_key_sid"], secret)
    token = await store.open(conn, org_id, AUTH_TOKEN, account["auth_token"])
    return TwilioLogin(account["account_sid"], account["account_sid"], token)
