"""How an outgoing event is signed, and how its receiver checks it. Pure.

Each POST carries ``Textpulse-Timestamp`` (Unix seconds) and ``Textpulse-Signature``:
``v1=`` and the hex HMAC-SHA256, keyed by the endpoint's secret, of ``f"{timestamp}.{body}"``, the body as
sent (UTF-8 JSON). A receiver recomputes it over the raw body and refuses a mismatch or an old timestamp
(a replay). README.md, "Outgoing signed events", shows the check for receivers.

    >>> signature = sign("whsec_x", 1700000000, b'{"id":"e"}')
    >>> verify("whsec_x", "1700000000", b'{"id":"e"}', signature, now=1700000010)
    True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

TIMESTAMP_HEADER: Final = "Textpulse-Timestamp"
SIGNATURE_HEADER: Final = "Textpulse-Signature"
EVENT_ID_HEADER: Final = "Textpulse-Event-Id"
EVENT_TYPE_HEADER: Final = "Textpulse-Event-Type"
VERSION: Final = "v1"
TOLERANCE_S: Final = 300  # how old a timestamp a receiver should accept
SECRET_PREFIX: Final = "whsec_"


def new_secret() -> str:
    """A fresh endpoint secret: 256 bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Textpulse-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """True when ``signature`` is this secret's over ``body`` and ``timestamp`` is within ``tolerance_s``."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)
