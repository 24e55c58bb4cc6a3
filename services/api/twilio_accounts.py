"""Checks a Twilio Account SID and auth token with Twilio itself before they are linked. Uses the twilio SDK.

``verify_credentials`` fetches the account (``GET /2010-04-01/Accounts/{Sid}.json``) with the credentials:

- 200: the account exists and the token is its own (primary or secondary): ``VerifiedAccount``.
- 403 with error 20008: Twilio test credentials, which may only create messages, numbers and calls;
  being told so proves the SID and token belong together, so they are accepted (``test=True``).
- 401 (20003) or 404 (20404): ``InvalidInput`` on ``auth_token`` / ``account_sid``, in plain words.
- anything else (a timeout, 429, 5xx): ``RetryableError("twilio_unavailable")``, answered 503.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from twilio.base.exceptions import TwilioRestException

from services.api.errors import InvalidInput
from services.api.twilio_console import console_client, twilio_unavailable

TEST_CREDENTIALS_ERROR = 20008


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    account_sid: str
    test: bool  # Twilio test credentials
    friendly_name: str | None = None
    account_type: str | None = None  # Trial | Full


async def verify_credentials(api_base_url: str, account_sid: str, auth_token: str) -> VerifiedAccount:
    """Raises InvalidInput when Twilio refuses the credentials, RetryableError when it cannot say."""
    return await asyncio.to_thread(_fetch_account, api_base_url, account_sid, auth_token)


def _fetch_account(api_base_url: str, account_sid: str, auth_token: str) -> VerifiedAccount:
    with console_client(api_base_url, account_sid, auth_token) as client:
        try:
            account = client.api.v2010.accounts(account_sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 403 and exc.code == TEST_CREDENTIALS_ERROR:
                return VerifiedAccount(account_sid, test=True)
            if exc.status == 401:
                raise InvalidInput("auth_token", "twilio_credentials_refused",
                                   "Twilio refused this Account SID and auth token: copy both again from the "
                                   "Twilio Console (Account Info)") from None
            if exc.status == 404:
                raise InvalidInput("account_sid", "twilio_account_unknown",
                                   "Twilio has no account with this SID") from None
            raise twilio_unavailable("check the account", exc.status) from None
    return VerifiedAccount(account_sid, test=False, friendly_name=account.friendly_name,
                           account_type=account.type)
