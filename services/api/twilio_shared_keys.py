"""Creates a webhook SharedKey with Twilio's SharedKeys API (``POST webhooks.twilio.com/v1/Webhooks/SharedKeys``),
through the twilio SDK, with the account's own credentials.

Twilio returns the key's secret in the create answer only, so it is stored at once and never asked for
again. With the default API base URL the SDK's own host is used; any other base URL (the stand-in) serves
every Twilio host at one address, as it does for the Messages API.

- 201: ``CreatedSharedKey`` (id and secret).
- 401 / 403: ``InvalidInput`` on ``auth_token`` (the stored credentials no longer work), in plain words.
- anything else (a timeout, 429, 5xx): ``RetryableError("twilio_unavailable")``, answered 503.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from twilio.base.exceptions import TwilioRestException
from twilio.rest.webhooks.v1.shared_key import SharedKeyList

from libs.common.errors import RetryableError
from services.api.twilio_console import console_client, linked_credentials_refused, twilio_unavailable


@dataclass(frozen=True, slots=True)
class CreatedSharedKey:
    key_id: str
    secret: str = field(repr=False)


async def create_shared_key(api_base_url: str, account_sid: str, auth_token: str,
                            friendly_name: str) -> CreatedSharedKey:
    """Raises InvalidInput when Twilio refuses the credentials, RetryableError when it cannot answer."""
    return await asyncio.to_thread(_create, api_base_url, account_sid, auth_token, friendly_name)


def _create(api_base_url: str, account_sid: str, auth_token: str, friendly_name: str) -> CreatedSharedKey:
    with console_client(api_base_url, account_sid, auth_token) as client:
        try:
            key = client.webhooks.v1.shared_keys.create(
                SharedKeyList.PostSharedKey({"friendlyName": friendly_name}))
        except TwilioRestException as exc:
            if exc.status in (401, 403):
                raise linked_credentials_refused() from None
            raise twilio_unavailable("create the SharedKey", exc.status) from None
    if not key.id or not key.secret:
        raise RetryableError("twilio_unavailable", "Twilio answered without the new SharedKey's id and secret; "
                             "try again in a minute")
    return CreatedSharedKey(key.id, key.secret)
