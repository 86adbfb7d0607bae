"""SSRF: the addresses a webhook must never reach, and the connect-time check that defeats DNS
rebinding (the name is resolved again when connecting, and only a vetted address is used)."""

from __future__ import annotations

import ipaddress
import typing

import httpcore
import httpx
import pytest

from services.router.egress import (
    IPAddress,
    VettedNetworkBackend,
    VettedTransport,
    refusal_reason,
    vetted_addresses,
)

LOCAL = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "CGNAT"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.5", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ],
)
def test_internal_addresses_are_refused_with_a_reason(address: str, reason: str) -> None:
    refused = refusal_reason(ipaddress.ip_address(address))
    assert refused is not None and reason in refused


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_the_allow_list_opens_its_networks_only_and_never_metadata() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1"), LOCAL) is None
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.2"), LOCAL) is None
    assert refusal_reason(ipaddress.ip_address("10.0.0.5"), LOCAL) == "private address"
    link_local = [ipaddress.ip_network("169.254.0.0/16")]
    assert refusal_reason(ipaddress.ip_address("169.254.169.254"), link_local) is not None


class Rebinding:
    """A DNS answer that changes: public when the URL is registered, loopback afterwards."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in self.answers.pop(0)]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the socket layer: records where a connection would go, then fails."""

    def __init__(self) -> None:
        self.connected_to: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected_to.append(host)
        raise httpcore.ConnectError("recorded")


async def post_through(backend: VettedNetworkBackend) -> httpx.ConnectError:
    async with httpx.AsyncClient(transport=VettedTransport(backend, max_connections=1)) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.post("https://hooks.example.com/x", content=b"{}")
    return failed.value


async def test_a_name_that_rebinds_to_loopback_is_refused_at_connect_time() -> None:
    resolver = Rebinding(["93.184.215.14"], ["127.0.0.1"])
    await vetted_addresses("hooks.example.com", 443, [], resolver)  # registration: fine
    sockets = RecordingBackend()
    error = await post_through(VettedNetworkBackend([], resolver=resolver, inner=sockets))
    assert "refused at connect time" in str(error) and "loopback" in str(error)
    assert sockets.connected_to == []


async def test_only_a_vetted_address_is_connected_to() -> None:
    resolver = Rebinding(["10.0.0.5", "169.254.169.254", "93.184.215.14"])
    sockets = RecordingBackend()
    error = await post_through(VettedNetworkBackend([], resolver=resolver, inner=sockets))
    assert "recorded" in str(error)
    assert sockets.connected_to == ["93.184.215.14"]


async def test_an_unresolvable_host_is_refused_by_name() -> None:
    async def nowhere(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    sockets = RecordingBackend()
    error = await post_through(VettedNetworkBackend([], resolver=nowhere, inner=sockets))
    assert "does not resolve" in str(error) and sockets.connected_to == []
