"""The one place that touches aioice internals: a full ICE agent whose media datagrams bypass its queue.

aioice's `Connection` queues every non-STUN datagram for `recv()` and parses each as STUN first. Here each
host socket's `datagram_received` is wrapped so RTP/RTCP/DTLS (first byte >= 20, RFC 7983) goes straight to
`on_datagram` with no parsing, and `send_datagram` writes to the nominated pair's transport directly.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import aioice

DatagramHandler = Callable[[bytes], None]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _inside(host: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


class IceAgent(aioice.Connection):
    """A full ICE agent (RFC 8445) for one component; controlling by default, as WhatsApp requires."""

    def __init__(self, on_datagram: DatagramHandler, *, ice_controlling: bool = True) -> None:
        super().__init__(ice_controlling=ice_controlling, components=1, use_ipv6=False)
        self._on_datagram = on_datagram
        self._send_transport: asyncio.DatagramTransport | None = None
        self._send_addr: tuple[str, int] | None = None

    # aioice hook: non-STUN data that still came through aioice's own path.
    def data_received(self, data: bytes, component: int) -> None:
        self._on_datagram(data)

    async def gather(self, addresses: Sequence[str]) -> list[Any]:
        """Bind one UDP socket per local address (no STUN, no interface enumeration)."""
        self._local_candidates_start = True
        candidates = await self.get_component_candidates(component=1, addresses=list(addresses))
        self._local_candidates += candidates
        self._local_candidates_end = True
        for protocol in self._protocols:
            _install_fast_path(protocol, self._on_datagram)
        return list(candidates)

    async def add_remote_candidates(
        self, sdp_candidates: Sequence[str], networks: Sequence[IPNetwork] | None = None
    ) -> None:
        """Pair the peer's UDP candidates for component 1 (only those in `networks`, when given)."""
        for value in sdp_candidates:
            try:
                candidate = aioice.Candidate.from_sdp(value)
            except ValueError:
                continue
            if candidate.component != 1 or candidate.transport.lower() != "udp":
                continue
            if networks is not None and not _inside(candidate.host, networks):
                continue
            await self.add_remote_candidate(candidate)
        await self.add_remote_candidate(None)

    def on_connected(self) -> None:
        """Cache the nominated pair's socket and address for `send_datagram` (call after `connect()`)."""
        pair = self._nominated.get(1)
        if pair is not None:
            self._send_transport = pair.protocol.transport
            self._send_addr = pair.remote_addr

    def send_datagram(self, data: bytes) -> None:
        transport = self._send_transport
        if transport is not None:
            transport.sendto(data, self._send_addr)

    @property
    def connected(self) -> bool:
        return self._send_transport is not None and not self._closed

    @property
    def closed(self) -> bool:
        return bool(self._closed)

    def selected_pair(self) -> str | None:
        pair = self._nominated.get(1)
        if pair is None:
            return None
        local, remote = pair.local_candidate, pair.remote_candidate
        return f"{local.host}:{local.port} ({local.type}) <-> {remote.host}:{remote.port} ({remote.type})"

    def tried_pairs(self) -> list[str]:
        """The candidate pairs checked, as `local -> remote` addresses."""
        return [
            f"{p.local_addr[0]}:{p.local_addr[1]} -> {p.remote_addr[0]}:{p.remote_addr[1]}"
            for p in self._check_list
        ]


def _install_fast_path(protocol: Any, on_datagram: DatagramHandler) -> None:
    stun_path = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        if data and data[0] > 19:
            on_datagram(data)
        else:
            stun_path(data, addr)

    protocol.datagram_received = datagram_received
