"""Credentials: password hashes, session tokens, API keys and CSRF tokens. Pure, apart from randomness.

    >>> hashed = hash_password("correct horse battery")
    >>> check_password(hashed, "correct horse battery").ok
    True

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile); a hash
made with weaker parameters than today's is re-hashed at the next good sign-in (``Checked.rehash``).
Test suites choose the cheapest parameters argon2 allows (``TEXTPULSE_PASSWORD_HASH_COST=cheap``, which
production refuses; the API applies it with :func:`use_password_cost`).
Session tokens and API keys are 32 random bytes, stored only as SHA-256 (see migration 0008).
Hashing a password costs ~50 ms of CPU: the API runs :func:`hash_password` and :func:`check_password`
on its own bounded pool (services/api/password_work.py), off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from libs.common.settings import PasswordCost

Role = Literal["admin", "approver", "staff"]  # an approver is staff who may also approve campaigns
ROLES: Final = ("admin", "approver", "staff")

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 200  # argon2 takes any length; this bounds the work per request

# A session lasts while it is used (idle), and never longer than a working week (absolute).
SESSION_IDLE: Final = timedelta(hours=12)
SESSION_ABSOLUTE: Final = timedelta(days=7)
# last_seen_at is written at most this often per session, so reading pages is not a write each time.
SESSION_TOUCH_EVERY: Final = timedelta(minutes=5)

# Sign-in attempts allowed in a window, per account (the e-mail address typed, known or not) and per
# client address; past either, attempts are refused without checking the password until the window ends.
# A good sign-in clears its account's count and gives its address back the attempt it used.
SIGN_IN_MAX_ATTEMPTS_PER_ACCOUNT: Final = 10
SIGN_IN_MAX_ATTEMPTS_PER_ADDRESS: Final = 10  # TEXTPULSE_SIGN_IN_MAX_PER_ADDRESS
SIGN_IN_WINDOW: Final = timedelta(minutes=15)

API_KEY_PREFIX: Final = "tpk_"
CSRF_HEADER: Final = "X-CSRF-Token"

_HASHERS: Final[dict[PasswordCost, PasswordHasher]] = {
    "standard": PasswordHasher(),
    "cheap": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),  # argon2's minimums: tests only
}


@dataclass(frozen=True, slots=True)
class _Hashing:
    hasher: PasswordHasher
    # Verified when the address is unknown, so a wrong address takes as long as a wrong password.
    dummy_hash: str


def _hashing(cost: PasswordCost) -> _Hashing:
    return _Hashing(_HASHERS[cost], _HASHERS[cost].hash(secrets.token_hex(16)))


_current = _hashing("standard")


def use_password_cost(cost: PasswordCost) -> None:
    """Hash and check passwords at ``cost`` from now on, in this process (``Settings.password_hash_cost``)."""
    global _current
    if _current.hasher is not _HASHERS[cost]:
        _current = _hashing(cost)


@contextmanager
def password_cost(cost: PasswordCost) -> Iterator[None]:
    """Passwords at ``cost`` inside the block (a service's lifetime), at the cost before it afterwards."""
    global _current
    before = _current
    use_password_cost(cost)
    try:
        yield
    finally:
        _current = before


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of a password check; ``rehash`` is a stronger hash to store, when one is due."""

    ok: bool
    rehash: str | None = None


def hash_password(password: str) -> str:
    return _current.hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> Checked:
    """Compare ``password`` with ``password_hash`` (None: an unknown user, checked against a dummy)."""
    hashing = _current
    try:
        hashing.hasher.verify(password_hash or hashing.dummy_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return Checked(ok=False)
    if password_hash is None:
        return Checked(ok=False)
    rehash = hashing.hasher.hash(password) if hashing.hasher.check_needs_rehash(password_hash) else None
    return Checked(ok=True, rehash=rehash)


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used, or None. Length is what matters (NIST SP 800-63B §5.1.1)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if not password.strip():
        return "must not be only spaces"
    return None


def account_throttle_key(email: str) -> str:
    return f"account:{email.strip().lower()}"


def address_throttle_key(client_address: str) -> str:
    return f"address:{client_address}"


def throttle_limits(email: str, client_address: str, max_per_address: int) -> dict[str, int]:
    """The sign-in throttle's keys for an attempt, each with the attempts it allows in a window."""
    return {account_throttle_key(email): SIGN_IN_MAX_ATTEMPTS_PER_ACCOUNT,
            address_throttle_key(client_address): max_per_address}


def new_token() -> str:
    """A session token or CSRF token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a session token or API key: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str  # shown to the admin once, never stored
    prefix: str  # stored and shown, to tell keys apart
    key_hash: str


def new_api_key() -> NewApiKey:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[len(API_KEY_PREFIX) : len(API_KEY_PREFIX) + 8], key_hash=token_hash(key))


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; False when either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def cookie_name(secure: bool) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless it is Secure, for this host only and
    # for every path: a sibling subdomain cannot plant one. Browsers allow it only over https.
    return "__Host-textpulse_session" if secure else "textpulse_session"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site (``//evil``, ``/\\evil``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\n" in target:
        return "/"
    return target
