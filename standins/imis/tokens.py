"""Bearer tokens issued by ``POST /token``: the password grant, and the refresh grant for client apps.

``now`` is passed in (seconds since the epoch), so the rules can be read without a clock. Tokens are
opaque random strings; an access token is valid until ``expires_at`` unless revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from email.utils import formatdate


class GrantError(Exception):
    """A refused grant; ``error`` and ``description`` form iMIS's OAuth error body (HTTP 400)."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return body


@dataclass(slots=True)
class Grant:
    access_token: str
    user_name: str
    issued_at: float
    expires_at: float
    refresh_token: str | None = None


@dataclass(slots=True)
class TokenStore:
    """Issues and checks tokens for one configured user and (optionally) one client application."""

    username: str
    password: str
    client_id: str | None
    client_secret: str | None
    expires_in: int
    _access: dict[str, Grant] = field(default_factory=dict)
    _refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> user name
    issued_count: int = 0

    def grant(self, form: dict[str, str], now: float) -> dict[str, object]:
        """Run the grant in ``form`` (keys case-insensitive) and return the token response body.

        Raises GrantError: ``unsupported_grant_type``, ``invalid_grant`` (bad user/password or refresh
        token) or ``invalid_client`` (unknown client id or secret).
        """
        fields = {k.lower(): v for k, v in form.items()}
        grant_type = fields.get("grant_type", "")
        client_id = fields.get("client_id")
        if client_id is not None and (
            client_id != self.client_id or fields.get("client_secret", self.client_secret) != self.client_secret
        ):
            raise GrantError("invalid_client", "The client_id or client_secret is incorrect.")
        if grant_type == "password":
            if fields.get("username") != self.username or fields.get("password") != self.password:
                raise GrantError("invalid_grant", "The user name or password is incorrect.")
            user = self.username
        elif grant_type == "refresh_token":
            user_or_none = self._refresh.pop(fields.get("refresh_token", ""), None)
            if user_or_none is None or client_id is None:
                raise GrantError("invalid_grant", "The refresh token is invalid or expired.")
            user = user_or_none
        else:
            raise GrantError("unsupported_grant_type")
        grant = Grant(secrets.token_urlsafe(48), user, now, now + self.expires_in)
        if client_id is not None:
            # Only client applications get refresh tokens (docs/imis.md#authentication).
            grant.refresh_token = secrets.token_urlsafe(32)
            self._refresh[grant.refresh_token] = user
        self._access[grant.access_token] = grant
        self.issued_count += 1
        body: dict[str, object] = {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }
        if grant.refresh_token is not None:
            body["refresh_token"] = grant.refresh_token
        body["userName"] = user
        body[".issued"] = formatdate(now, usegmt=True)
        body[".expires"] = formatdate(grant.expires_at, usegmt=True)
        return body

    def check(self, authorization: str | None, now: float) -> Grant | None:
        """The live grant behind an ``Authorization: Bearer ...`` header, or None."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            return None
        grant = self._access.get(authorization[7:].strip())
        if grant is None or grant.expires_at <= now:
            return None
        return grant

    def revoke(self, access_token: str) -> None:
        self._access.pop(access_token, None)

    def expire_all(self) -> int:
        """Make every issued access token invalid; returns how many there were."""
        count = len(self._access)
        self._access.clear()
        return count
