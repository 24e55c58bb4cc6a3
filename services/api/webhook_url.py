"""Which ``webhook_base_url`` an organisation may give Twilio. Pure.

Twilio signs every webhook over this URL, and the opt-out service checks the signature against it, so a
typo silently refuses every STOP; and a URL on a private network would point Twilio (and anything that
follows the setting) inside ours. Outside development and test:

- only ``https``;
- no loopback, private, link-local (169.254.0.0/16, where cloud metadata lives), carrier-grade NAT,
  multicast, reserved or unspecified address, however it is written (``127.1``, ``0x7f000001``,
  ``2130706433``, ``[::ffff:169.254.169.254]``);
- no ``localhost`` or names only a local resolver answers (``*.localhost``, ``*.local``, ``*.internal``,
  ``*.home.arpa``) and no name without a dot;
- no user name or password in the URL, no fragment.

The same rule holds for the endpoints an organisation's events are POSTed to (routes/webhook_endpoints.py):
Textpulse calls them, and must not be pointed inside its own network.

In development and test, ``http`` and local hosts are allowed (the stack and its stand-ins run on 127.0.0.1).

    >>> check_webhook_base_url("https://sms.example.org/hooks", env="production")
    'https://sms.example.org/hooks'
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from services.api.errors import InvalidInput

FIELD = "webhook_base_url"
LOCAL_ENVS = frozenset({"development", "test"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not is_private in 3.11


def check_webhook_base_url(url: str, *, env: str, field: str = FIELD, caller: str = "Twilio") -> str:
    """``url`` without a trailing slash, or raises InvalidInput naming ``field`` with the reason. ``caller`` is
    who will call the URL (Twilio, or Textpulse itself for an organisation's event endpoints)."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidInput(field, "url_invalid", f"is not a URL {caller} can call") from None
    local = env in LOCAL_ENVS
    if parts.scheme not in (("https", "http") if local else ("https",)):
        raise InvalidInput(field, "url_not_https", f"must start with https:// ({caller} calls it only over TLS)")
    if not host:
        raise InvalidInput(field, "url_invalid", "has no host name")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(field, "url_has_credentials", "may not contain a user name or password")
    if parts.fragment:
        raise InvalidInput(field, "url_invalid", "may not contain a #fragment")
    if not local:
        _refuse_internal_host(host, field, caller)
    return url.strip().rstrip("/")


def _refuse_internal_host(host: str, field: str, caller: str) -> None:
    address = _literal_address(host)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
                or address.is_reserved or address.is_unspecified or address in _SHARED_ADDRESS_SPACE):
            raise InvalidInput(field, "url_host_internal",
                               f"points at an internal address ({address}): {caller} must reach it from the internet")
        return
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host.rstrip("."):
        raise InvalidInput(field, "url_host_internal",
                           f"names a host only a local network knows ({host}): use the public host name")


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as an IP stands for, in any form a resolver accepts; None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if all(c in "0123456789abcdefx." for c in host) and any(c.isdigit() for c in host):
        try:  # 127.1, 0x7f.0.0.1, 2130706433: inet_aton reads them as getaddrinfo would
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
