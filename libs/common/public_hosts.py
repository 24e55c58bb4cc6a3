"""Which hosts a URL an organisation gives us may point at, and an HTTP client that keeps to them.

Outside development and test, a URL an organisation types (the webhook base URL Twilio calls, the iMIS
site we call) must not reach inside our network: no loopback, private, link-local (169.254.0.0/16, where
cloud metadata lives), carrier-grade NAT, multicast, reserved or unspecified address, however it is
written (``127.1``, ``0x7f000001``, ``2130706433``, ``[::ffff:169.254.169.254]``), and no ``localhost`` or
name only a local resolver answers (``*.localhost``, ``*.local``, ``*.internal``, ``*.home.arpa``, a name
without a dot).

A public name can still resolve to an internal address, and resolve differently a second later (a DNS
rebind). :func:`outbound_client` therefore resolves the host of every request itself, refuses it if any
address is internal, and connects to the address it checked (the TLS name stays the host's).

    >>> internal_host_reason("169.254.169.254")
    'points at an internal address (169.254.169.254)'
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

LOCAL_ENVS = frozenset({"development", "test"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not is_private in 3.11

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class InternalHost(httpx.TransportError):
    """A request's host is, or resolves to, an address inside our network. ``reason`` says which."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host} {reason}")
        self.host = host
        self.reason = reason


def internal_host_reason(host: str) -> str | None:
    """Why ``host`` (a name or an address as written in a URL) is internal without resolving it; None if not."""
    host = host.lower()
    address = literal_address(host)
    if address is not None:
        return f"points at an internal address ({address})" if is_internal(address) else None
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host.rstrip("."):
        return f"names a host only a local network knows ({host})"
    return None


def is_internal(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or address in _SHARED_ADDRESS_SPACE)


def literal_address(host: str) -> Address | None:
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


async def resolve_public(host: str, port: int) -> str:
    """One address of ``host``, after checking that none of its addresses is internal; raises InternalHost,
    or httpx.ConnectError when the name does not resolve."""
    reason = internal_host_reason(host)
    if reason is not None:
        raise InternalHost(host, reason)
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"{host} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if is_internal(address):
            raise InternalHost(host, f"resolves to an internal address ({address})")
    if not addresses:
        raise httpx.ConnectError(f"{host} does not resolve")
    return str(addresses[0])


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    """Sends each request to the address :func:`resolve_public` checked, except to ``trusted`` hosts."""

    def __init__(self, trusted: frozenset[str], inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._trusted = trusted

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host.lower() not in self._trusted:
            address = await resolve_public(host, request.url.port or (443 if request.url.scheme == "https" else 80))
            # The Host header was set from the URL when the request was built; TLS checks the certificate
            # against the name, not the address.
            request.extensions = {**request.extensions, "sni_hostname": host}
            request.url = request.url.copy_with(host=address)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def outbound_client(*, env: str, timeout: httpx.Timeout | float, trusted_url: str | None = None) -> httpx.AsyncClient:
    """An HTTP client for URLs organisations give us: outside development and test, it refuses internal hosts
    at every request (InternalHost). ``trusted_url``'s host (the deployment's own, set by its operator)
    is exempt."""
    if env in LOCAL_ENVS:
        return httpx.AsyncClient(timeout=timeout)
    trusted = frozenset({(urlsplit(trusted_url).hostname or "").lower()} if trusted_url else set()) - {""}
    return httpx.AsyncClient(timeout=timeout, transport=PublicOnlyTransport(trusted))
