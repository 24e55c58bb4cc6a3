"""Envelope encryption of stored credentials with AES-256-GCM (the ``cryptography`` package). Pure.

    keyring = Keyring.from_secrets("the TEXTPULSE_SECRET_KEY", previous=["the key before it"])
    dek = new_data_key()
    wrapped = keyring.wrap(dek, org_id=org_id, dek_id=dek_id)       # stored with keyring.current_id
    stored = seal(dek, dek_id, "the token", org_id=org_id, column="sms_accounts.auth_token")
    open_sealed(dek, stored, org_id=org_id, column="sms_accounts.auth_token")  # -> "the token"

- A key-encryption key (KEK) is derived from a secret with HKDF-SHA256. Its id is derived from the same
  secret with other HKDF info, so every process with the secret agrees on the id without storing it.
- A data key (DEK) is 32 random bytes per organisation, stored wrapped by a KEK; its associated data is
  the organisation and the DEK's id, so a wrapped key copied to another organisation does not unwrap.
- A stored secret is ``tp1:<dek id>:<nonce>:<ciphertext>`` (base64url); its associated data is the
  organisation and the column, so a value copied to another organisation's row or another column fails.

- A number's digest (``number_digest``) is HMAC-SHA256 under a key derived with HKDF from the organisation's
  data key, so it survives a KEK rotation and differs between organisations; erased members' numbers are
  kept only as such digests (migration 0031).

Errors carry ids and column names only, never a key or a value: ``SecretUnreadable`` (a permanent error).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from libs.common.errors import PermanentError

VERSION: Final = "tp1"
_NONCE_BYTES: Final = 12  # AES-GCM's standard nonce; random per encryption (2^32 encryptions per key is safe)
_SALT: Final = b"textpulse.envelope"
_SEALED: Final = re.compile(rf"^{VERSION}:([0-9a-f]{{16}}):([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)$")


class SecretUnreadable(PermanentError):
    """A stored secret or data key cannot be opened: wrong key, wrong organisation or column, or not sealed."""


def _derive(secret: str, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret.encode())


@dataclass(frozen=True)
class KeyEncryptionKey:
    id: str
    key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> KeyEncryptionKey:
        return cls(_derive(secret, b"kek id v1", 6).hex(), _derive(secret, b"kek v1", 32))

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(id={self.id!r})"


class Keyring:
    """The current KEK, which wraps new and re-wrapped data keys, and previous ones, which only unwrap."""

    def __init__(self, current: KeyEncryptionKey, previous: Iterable[KeyEncryptionKey] = ()) -> None:
        self.current = current
        self._keys = {k.id: k for k in previous} | {current.id: current}

    @classmethod
    def from_secrets(cls, current: str, previous: Iterable[str] = ()) -> Keyring:
        return cls(KeyEncryptionKey.from_secret(current), [KeyEncryptionKey.from_secret(s) for s in previous])

    @property
    def current_id(self) -> str:
        return self.current.id

    def knows(self, kek_id: str) -> bool:
        return kek_id in self._keys

    def wrap(self, dek: bytes, *, org_id: uuid.UUID, dek_id: str) -> bytes:
        """The data key encrypted under the current KEK: nonce followed by ciphertext."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.current.key).encrypt(nonce, dek, _dek_context(org_id, dek_id))

    def unwrap(self, wrapped: bytes, *, kek_id: str, org_id: uuid.UUID, dek_id: str) -> bytes:
        kek = self._keys.get(kek_id)
        if kek is None:
            raise SecretUnreadable(
                "secret_key_unknown",
                f"data key {dek_id} is wrapped by key {kek_id}, which is neither TEXTPULSE_SECRET_KEY "
                f"(key {self.current_id}) nor one of TEXTPULSE_SECRET_KEY_PREVIOUS")
        try:
            return AESGCM(kek.key).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:],
                                           _dek_context(org_id, dek_id))
        except InvalidTag:
            raise SecretUnreadable("data_key_unreadable",
                                   f"data key {dek_id} does not unwrap for organisation {org_id}") from None


def new_data_key() -> tuple[str, bytes]:
    """A fresh data key and its id (16 hex digits)."""
    return secrets.token_hex(8), AESGCM.generate_key(bit_length=256)


def is_sealed(stored: str) -> bool:
    return _SEALED.match(stored) is not None


def sealed_key_id(stored: str, *, column: str) -> str:
    """The id of the data key ``stored`` was sealed with; SecretUnreadable if it is not a sealed value."""
    match = _SEALED.match(stored)
    if match is None:
        raise SecretUnreadable("secret_not_sealed", f"{column} is not stored encrypted (run python -m deploy.migrate)")
    return match.group(1)


def seal(dek: bytes, dek_id: str, plaintext: str, *, org_id: uuid.UUID, column: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext.encode(), _secret_context(org_id, column))
    return f"{VERSION}:{dek_id}:{_b64(nonce)}:{_b64(ciphertext)}"


def open_sealed(dek: bytes, stored: str, *, org_id: uuid.UUID, column: str) -> str:
    """The plaintext of ``stored``; SecretUnreadable if it was sealed for another organisation or column."""
    match = _SEALED.match(stored)
    if match is None:
        raise SecretUnreadable("secret_not_sealed", f"{column} is not stored encrypted")
    try:
        plaintext = AESGCM(dek).decrypt(_unb64(match.group(2)), _unb64(match.group(3)),
                                        _secret_context(org_id, column))
    except (InvalidTag, ValueError):
        raise SecretUnreadable("secret_unreadable",
                               f"{column} of organisation {org_id} does not decrypt: it was sealed for another "
                               "organisation or column, or altered") from None
    return plaintext.decode()


def digest_key(dek: bytes, org_id: uuid.UUID) -> bytes:
    """The organisation's key for number digests, derived from its data key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT,
                info=f"textpulse number digest v1|{org_id}".encode()).derive(dek)


def number_digest(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key`` (from :func:`digest_key`), as 64 hex digits."""
    return hmac.digest(key, value.encode(), hashlib.sha256).hex()


def _dek_context(org_id: uuid.UUID, dek_id: str) -> bytes:
    return f"textpulse data key|{org_id}|{dek_id}".encode()


def _secret_context(org_id: uuid.UUID, column: str) -> bytes:
    return f"textpulse secret|{org_id}|{column}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
