"""``X-Twilio-Signature`` as Twilio computes it (twilio.md §6), so the SDK's ``RequestValidator`` accepts it.

The URL exactly as configured (scheme, host, port, path and query), then each form parameter name
followed by its value, names in plain string order (several values of one name: each, sorted);
HMAC-SHA1 keyed with the auth token; base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    by_name: dict[str, set[str]] = {}
    for name, value in params:
        by_name.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(by_name) for value in sorted(by_name[name]))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
