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

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.webhooks.v1.shared_key import SharedKeyList

from libs.common.errors import RetryableError
from services.api.errors import InvalidInput

TWILIO_API = "https://api.twilio.com"
TIMEOUT_S = 10.0  # a person is waiting on the Settings page


@dataclass(frozen=True, slots=True)
class CreatedSharedKey:
    key_id: str
    secret: str = field(repr=False)


async def create_shared_key(api_base_url: str, account_sid: str, auth_token: str,
                            friendly_name: str) -> CreatedSharedKey:
    """Raises InvalidInput when Twilio refuses the credentials, RetryableError when it cannot answer."""
    return await asyncio.to_thread(_create, api_base_url, account_sid, auth_token, friendly_name)


def _create(api_base_url: str, account_sid: str, auth_token: str, friendly_name: str) -> CreatedSharedKey:
    http = TwilioHttpClient(timeout=TIMEOUT_S)
    client = Client(account_sid, auth_token, account_sid, http_client=http)
    if api_base_url.rstrip("/") != TWILIO_API:
        client.webhooks.base_url = api_base_url.rstrip("/")
    try:
        key = client.webhooks.v1.shared_keys.create(SharedKeyList.PostSharedKey({"friendlyName": friendly_name}))
    except TwilioRestException as exc:
        if exc.status in (401, 403):
            raise InvalidInput("auth_token", "twilio_credentials_refused",
                               "Twilio refused the linked account's auth token: link the account again with "
                               "its current auth token") from None
        raise RetryableError("twilio_unavailable", f"Twilio could not create the SharedKey (HTTP {exc.status}); "
                             "try again in a minute") from None
    except (requests.RequestException, OSError, TwilioException) as exc:
        raise RetryableError("twilio_unavailable", f"Twilio could not be reached ({type(exc).__name__}); "
                             "try again in a minute") from None
    finally:
        if http.session is not None:
            http.session.close()
    if not key.id or not key.secret:
        raise RetryableError("twilio_unavailable", "Twilio answered without the new SharedKey's id and secret; "
                             "try again in a minute")
    return CreatedSharedKey(key.id, key.secret)
