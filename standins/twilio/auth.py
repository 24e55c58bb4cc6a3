"""HTTP Basic authentication as Twilio does it: ``AccountSid:AuthToken``, ``ApiKeySid:Secret``, or test credentials.

The ``AC`` SID in the path must be the one the credentials belong to (an API key acts for its account).
Decoded headers are cached, since a client sends the same one on every request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from standins.twilio.config import TwilioConfig
from standins.twilio.errors import unauthenticated


@dataclass(frozen=True, slots=True)
class Principal:
    account_sid: str
    test: bool  # test credentials: only message creates, magic numbers, nothing stored


class Authenticator:
    def __init__(self, config: TwilioConfig) -> None:
        self._credentials: dict[str, tuple[tuple[str, ...], Principal]] = {
            config.account_sid: ((config.auth_token,), Principal(config.account_sid, False)),
            config.api_key_sid: ((config.api_key_secret,), Principal(config.account_sid, False)),
            config.test_account_sid: ((config.test_auth_token,), Principal(config.test_account_sid, True)),
        }
        for other in config.other_accounts:
            tokens = (other.auth_token,) + ((other.secondary_auth_token,) if other.secondary_auth_token else ())
            self._credentials[other.account_sid] = (tokens, Principal(other.account_sid, False))
        self._cache: dict[str, Principal] = {}

    def principal(self, authorization: str | None, path_account_sid: str | None) -> Principal:
        """Who is calling; raises TwilioApiError 401/20003 for missing or wrong credentials.

        A valid caller naming another account in the path gets 401 too, as Twilio answers.
        """
        if not authorization:
            raise unauthenticated()
        principal = self._cache.get(authorization)
        if principal is None:
            principal = self._decode(authorization)
            if len(self._cache) < 1024:
                self._cache[authorization] = principal
        if path_account_sid is not None and path_account_sid != principal.account_sid:
            raise unauthenticated()
        return principal

    def _decode(self, authorization: str) -> Principal:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise unauthenticated()
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthenticated() from None
        known = self._credentials.get(username)
        if known is None or not any(hmac.compare_digest(t.encode(), password.encode()) for t in known[0]):
            raise unauthenticated()
        return known[1]
