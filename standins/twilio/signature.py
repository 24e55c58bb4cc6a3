"""``X-Twilio-Signature`` as Twilio computes it, so the SDK's ``RequestValidator`` accepts it.

See docs/twilio.md#webhook-signatures.

The URL exactly as configured (scheme, host, port, path and query), then each form parameter name
followed by its value, names in plain string order (several values of one name: each, sorted); an HMAC
of that, base64.

Twilio signs an account's webhooks one of two ways (``WebhookSigning``): HMAC-SHA1 keyed with the auth
token, and nothing else; or keyed with a SharedKey's secret, with HMAC-SHA1 or HMAC-SHA256, and then it
names the key and the algorithm in ``X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=<name>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Algorithm = Literal["HMAC_SHA1", "HMAC_SHA256"]
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def sign(secret: str, url: str, params: Iterable[tuple[str, str]], algorithm: Algorithm = "HMAC_SHA1") -> str:
    by_name: dict[str, set[str]] = {}
    for name, value in params:
        by_name.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(by_name) for value in sorted(by_name[name]))
    digest = hmac.new(secret.encode(), data.encode("utf-8"), _HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class WebhookSigning:
    """The secret the account's webhooks are signed with: the auth token (``shared_key_id`` None), or a SharedKey."""

    secret: str = field(repr=False)
    shared_key_id: str | None = None
    algorithm: Algorithm = "HMAC_SHA1"

    def headers(self, url: str, params: Iterable[tuple[str, str]]) -> dict[str, str]:
        signed = {"X-Twilio-Signature": sign(self.secret, url, params, self.algorithm)}
        if self.shared_key_id is not None:
            signed[SETTINGS_HEADER] = f"key={self.shared_key_id},algorithm={self.algorithm}"
        return signed
