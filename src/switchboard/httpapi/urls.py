"""Where user-supplied URLs may lead (notify URLs, audio to play, Graph API URLs from sender config,
media-stream WebSocket URLs).

Deny by default: a URL may reach an address only if it is global unicast, outside the ranges that
carry or translate to other addresses (shared address space 100.64.0.0/10, 6to4 2002::/16, Teredo,
NAT64, IPv4-mapped IPv6), unless `[server] allow_private_urls` is set or the address is inside one of
`[server] allowed_url_networks`. A URL is checked when it is accepted (a 400 that names the field) and
again when a connection is made (`httpapi.egress`), which dials the very address it checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses the host resolves to, as text."""

NOT_PUBLIC: tuple[Network, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "100.64.0.0/10",  # shared address space (RFC 6598)
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64 (RFC 6052)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "2001::/32",  # Teredo
        "2002::/16",  # 6to4
    )
)
"""Ranges that `ipaddress` may call global but that lead to private or translated addresses."""


class UnsafeUrl(ValueError):
    pass


def is_public(address: Address) -> bool:
    """A global unicast address outside `NOT_PUBLIC`."""
    if address.is_multicast or not address.is_global:
        return False
    return not any(address.version == net.version and address in net for net in NOT_PUBLIC)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_networks(networks: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(net, strict=False) for net in networks)


HTTP_SCHEMES: Mapping[str, int] = {"http": 80, "https": 443}
WEBSOCKET_SCHEMES: Mapping[str, int] = {"ws": 80, "wss": 443}
"""URL schemes with their default ports."""


def _kind(schemes: Mapping[str, int]) -> str:
    return "a ws(s)" if schemes is WEBSOCKET_SCHEMES else "an http(s)"


def check_url_syntax(url: str, field: str, schemes: Mapping[str, int] = HTTP_SCHEMES) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise UnsafeUrl(f"{field}: {url!r} is not {_kind(schemes)} URL") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise UnsafeUrl(f"{field}: {url!r} is not {_kind(schemes)} URL")


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    allow_private: bool = False
    """Every address may be reached (`[server] allow_private_urls`)."""
    allowed_networks: tuple[Network, ...] = ()
    """Networks that may be reached although they are not public (`[server] allowed_url_networks`)."""
    resolver: Resolver = system_resolver

    def permits(self, address: Address) -> bool:
        if self.allow_private or is_public(address):
            return True
        return any(address.version == net.version and address in net for net in self.allowed_networks)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`, resolved once; `UnsafeUrl` if any is not permitted."""
        try:
            found = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self.resolver(host, port)]
            except (OSError, ValueError) as exc:
                raise UnsafeUrl(f"cannot resolve {host!r}: {exc}") from exc
        if not found:
            raise UnsafeUrl(f"cannot resolve {host!r}: no addresses")
        for address in found:
            if not self.permits(address):
                raise UnsafeUrl(
                    f"{host!r} resolves to {address}, a private address (not public unicast); set "
                    "[server] allow_private_urls = true or list its network in "
                    "[server] allowed_url_networks to allow it"
                )
        return [str(address) for address in found]

    async def check_url(self, url: str, field: str, schemes: Mapping[str, int] = HTTP_SCHEMES) -> None:
        """Raise `UnsafeUrl` naming `field` if `url` is not one of `schemes` (http(s) by default) or
        leads to an address not permitted."""
        check_url_syntax(url, field, schemes)
        if self.allow_private:
            return
        parts = urlsplit(url)
        port = parts.port or schemes[parts.scheme]
        try:
            await self.addresses(parts.hostname or "", port)
        except UnsafeUrl as exc:
            raise UnsafeUrl(f"{field}: {exc}") from None
