"""Where webhooks may go: no loopback, private, link-local, multicast or metadata addresses.

A webhook URL is chosen by whoever holds the admin key, and the router POSTs to it from inside
the network: without a check it is a way to reach internal services and the cloud metadata
endpoint (SSRF). The URL's host is resolved and vetted when the endpoint is registered, and again
at every connection, by `VettedNetworkBackend`: it resolves the name itself, vets every address
and connects only to a vetted one, so a name that resolves to a public address at registration
and to 127.0.0.1 later (DNS rebinding) is still refused. Operators allow-list internal networks
(`SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS`); metadata addresses are refused even then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable, Sequence

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Instance metadata services (AWS, GCP, Azure, OpenStack, Oracle; Alibaba; AWS over IPv6).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)
CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# NAT64 well-known prefix: the last 32 bits are the IPv4 address a NAT64 gateway reaches.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedDestination(Exception):
    """A webhook host that resolves to an address the router must not reach."""


def refusal_reason(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why the router must not connect to `address`, or None when it may.

    IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`, 6to4, NAT64) are judged by
    the IPv4 address, since that is where the packets go.
    """
    if isinstance(address, ipaddress.IPv6Address):
        nat64 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None
        embedded = address.ipv4_mapped or address.sixtofour or nat64
        if embedded is not None:
            return refusal_reason(embedded, allowed)
    if address in METADATA_ADDRESSES:
        return "cloud metadata address"
    if any(address in network for network in allowed):
        return None
    checks = (
        (address.is_unspecified, "unspecified address"),
        (address.is_loopback, "loopback address"),
        (address.is_link_local, "link-local address"),
        # fec0::/10 (deprecated site-local) counts as global in Python 3.11's tables.
        (
            isinstance(address, ipaddress.IPv6Address) and address.is_site_local,
            "site-local address",
        ),
        (address.is_multicast, "multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CGNAT, "shared (CGNAT) address"),
        (address.is_reserved, "reserved address"),
        (address.is_private, "private address"),
        (not address.is_global, "not a globally routable address"),
    )
    return next((reason for refused, reason in checks if refused), None)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # scope ids (fe80::1%eth0) are dropped: the address alone decides.
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )


async def vetted_addresses(
    host: str, port: int, allowed: Sequence[IPNetwork], resolver: Resolver = resolve
) -> list[IPAddress]:
    """The addresses of `host` the router may connect to; RefusedDestination if there are none.

    The error names every refused address and why, so an operator sees what to allow-list.
    """
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise RefusedDestination(f"{host} does not resolve: {exc}") from exc
    vetted = [a for a in addresses if refusal_reason(a, allowed) is None]
    if not vetted:
        reasons = ", ".join(f"{a} is a {refusal_reason(a, allowed)}" for a in addresses)
        raise RefusedDestination(f"{host} is refused: {reasons or 'no address'}")
    return vetted


class VettedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that connects only to vetted addresses of the requested host.

    TLS still verifies the certificate against the host name (httpcore takes the SNI name from
    the URL, not from the address connected to).
    """

    def __init__(
        self,
        allowed: Sequence[IPNetwork],
        *,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = list(allowed)
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await vetted_addresses(host, port, self._allowed, self._resolver)
        except RefusedDestination as exc:
            raise httpcore.ConnectError(f"refused at connect time: {exc}") from exc
        return await self._inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class VettedTransport(httpx.AsyncHTTPTransport):
    """httpx transport over `VettedNetworkBackend`: no proxies from the environment (a proxy
    would make the connection on our behalf, unvetted), system CA bundle via httpx's default."""

    def __init__(self, backend: VettedNetworkBackend, *, max_connections: int) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            network_backend=backend,
        )
