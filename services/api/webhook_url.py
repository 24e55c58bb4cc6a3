"""Which ``webhook_base_url`` an organisation may give Twilio, and which iMIS ``base_url`` we may call. Pure.

Twilio signs every webhook over the webhook URL, and the opt-out service checks the signature against it,
so a typo silently refuses every STOP; and a URL on a private network would point Twilio (and anything
that follows the setting) inside ours. The iMIS site is called by us with the organisation's password:
on a private network it would point our own requests inside. Outside development and test:

- only ``https``;
- no internal host (libs/common/public_hosts.py has the rule; the iMIS client checks it again, after DNS
  resolution, at every request);
- no user name or password in the URL, no fragment.

The same rule holds for the endpoints an organisation's events are POSTed to (routes/webhook_endpoints.py):
Textpulse calls them, and must not be pointed inside its own network.

In development and test, ``http`` and local hosts are allowed (the stack and its stand-ins run on 127.0.0.1).

    >>> check_webhook_base_url("https://sms.example.org/hooks", env="production")
    'https://sms.example.org/hooks'
"""

from __future__ import annotations

from urllib.parse import urlsplit

from libs.common.public_hosts import LOCAL_ENVS, internal_host_reason
from services.api.errors import InvalidInput

FIELD = "webhook_base_url"


def check_webhook_base_url(url: str, *, env: str, field: str = FIELD) -> str:
    """``url`` without a trailing slash, or raises InvalidInput naming ``field`` with the reason."""
    return _check_public_url(url, env=env, field=field, caller="Twilio",
                             https_why="Twilio signs its webhooks over it")


def check_imis_base_url(url: str, *, env: str, field: str = "base_url") -> str:
    """The iMIS site root without a trailing slash, or raises InvalidInput naming ``field``."""
    return _check_public_url(url, env=env, field=field, caller="Textpulse",
                             https_why="the iMIS password is sent to it")


def check_event_endpoint_url(url: str, *, env: str, field: str = "url") -> str:
    """An organisation's event endpoint without a trailing slash, or raises InvalidInput naming ``field``."""
    return _check_public_url(url, env=env, field=field, caller="Textpulse",
                             https_why="events carry members' numbers and replies")


def _check_public_url(url: str, *, env: str, field: str, caller: str, https_why: str) -> str:
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidInput(field, "url_invalid", f"is not a URL {caller} can call") from None
    local = env in LOCAL_ENVS
    if parts.scheme not in (("https", "http") if local else ("https",)):
        raise InvalidInput(field, "url_not_https", f"must start with https:// ({https_why})")
    if not host:
        raise InvalidInput(field, "url_invalid", "has no host name")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(field, "url_has_credentials", "may not contain a user name or password")
    if parts.fragment:
        raise InvalidInput(field, "url_invalid", "may not contain a #fragment")
    reason = None if local else internal_host_reason(host)
    if reason is not None:
        raise InvalidInput(field, "url_host_internal", f"{reason}: {caller} must reach it from the internet")
    return url.strip().rstrip("/")
