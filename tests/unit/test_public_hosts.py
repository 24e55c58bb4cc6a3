"""libs/common/public_hosts.py: which hosts are internal, and the client that checks every request's resolved
address (a DNS rebind between the save and a later request does not get through)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from libs.common.public_hosts import InternalHost, PublicOnlyTransport, internal_host_reason, outbound_client

PUBLIC = "93.184.216.34"


class FakeDns:
    """socket.getaddrinfo for names the test sets; the addresses of a name can change between look-ups."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}

    def getaddrinfo(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in self.names[host]]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "[::1]", "10.0.0.7", "192.168.1.1",
                                  "172.16.0.1", "169.254.169.254", "[fe80::1]", "[::ffff:169.254.169.254]",
                                  "100.64.0.1", "0.0.0.0", "localhost", "metadata.google.internal", "imis"])
def test_internal_hosts_are_named_without_resolving(host: str) -> None:
    assert internal_host_reason(host) is not None


@pytest.mark.parametrize("host", ["members.example.org", PUBLIC, "[2606:4700::1111]"])
def test_public_hosts_pass(host: str) -> None:
    assert internal_host_reason(host) is None


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={})


async def test_each_request_goes_to_the_address_checked_and_a_rebind_is_refused(dns: FakeDns) -> None:
    inner = Recorder()
    async with httpx.AsyncClient(transport=PublicOnlyTransport(frozenset(), inner)) as client:
        dns.names["members.example.org"] = [PUBLIC]
        assert (await client.get("https://members.example.org/token")).status_code == 200
        sent = inner.requests[0]
        assert (sent.url.host, sent.headers["host"], sent.extensions["sni_hostname"]) == (
            PUBLIC, "members.example.org", "members.example.org")

        for rebound in (["127.0.0.1"], ["169.254.169.254"], [PUBLIC, "10.0.0.7"], ["fe80::1"]):
            dns.names["members.example.org"] = rebound
            with pytest.raises(InternalHost, match="resolves to an internal address"):
                await client.get("https://members.example.org/api/Query")
        assert len(inner.requests) == 1


async def test_a_literal_internal_host_is_refused_before_any_look_up(dns: FakeDns) -> None:
    async with httpx.AsyncClient(transport=PublicOnlyTransport(frozenset(), Recorder())) as client:
        with pytest.raises(InternalHost, match="internal address"):
            await client.get("https://169.254.169.254/latest/meta-data/")
        with pytest.raises(httpx.ConnectError, match="does not resolve"):
            await client.get("https://nowhere.example.org/")


async def test_the_deployments_own_site_and_development_are_not_checked(dns: FakeDns) -> None:
    inner = Recorder()
    async with httpx.AsyncClient(transport=PublicOnlyTransport(frozenset({"imis.svc.internal"}), inner)) as client:
        await client.get("https://imis.svc.internal/token")  # the operator's TEXTPULSE_IMIS_BASE_URL
    assert inner.requests[0].url.host == "imis.svc.internal"
    for env in ("development", "test"):
        async with outbound_client(env=env, timeout=1.0) as client:
            assert not isinstance(client._transport, PublicOnlyTransport)
    async with outbound_client(env="production", timeout=1.0) as client:
        assert isinstance(client._transport, PublicOnlyTransport)
