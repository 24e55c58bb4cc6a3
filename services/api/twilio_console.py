"""The twilio SDK client for calls made while a person waits on the Settings page, and the answers every
such call shares: a short timeout, the stand-in's one address for every Twilio host, refused credentials
as ``InvalidInput`` on ``auth_token``, and anything Twilio could not answer as
``RetryableError("twilio_unavailable")`` (503)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from libs.common.errors import RetryableError
from services.api.errors import InvalidInput

TWILIO_API = "https://api.twilio.com"
TIMEOUT_S = 10.0


@contextmanager
def console_client(api_base_url: str, account_sid: str, auth_token: str) -> Iterator[Client]:
    """A client on ``api_base_url``: with Twilio's own, each API keeps the SDK's host; any other base URL (the
    stand-in) serves every Twilio host at one address. Transport failures become ``twilio_unavailable``."""
    http = TwilioHttpClient(timeout=TIMEOUT_S)
    client = Client(account_sid, auth_token, account_sid, http_client=http)
    base = api_base_url.rstrip("/")
    if base != TWILIO_API:
        client.api.base_url = client.messaging.base_url = client.webhooks.base_url = base
    try:
        yield client
    except (requests.RequestException, OSError, TwilioException) as exc:
        raise RetryableError("twilio_unavailable", f"Twilio could not be reached ({type(exc).__name__}); "
                             "try again in a minute") from None
    finally:
        if http.session is not None:
            http.session.close()


def linked_credentials_refused() -> InvalidInput:
    return InvalidInput("auth_token", "twilio_credentials_refused",
                        "Twilio refused the linked account's auth token: link the account again with its "
                        "current auth token")


def twilio_unavailable(what: str, status: int) -> RetryableError:
    return RetryableError("twilio_unavailable", f"Twilio could not {what} (HTTP {status}); try again in a minute")
