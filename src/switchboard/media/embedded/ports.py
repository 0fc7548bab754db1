"""UDP port pairs for plain RTP legs, from a configured range (RTP on an even port, RTCP on the next)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from switchboard.errors import MediaError

DatagramHandler = Callable[[bytes, tuple[str, int]], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handler(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is not there yet: the no-media timeout decides.
        return None


class PortPool:
    """Hands out RTP/RTCP socket pairs round-robin over `[low, high]`, skipping ports in use."""

    def __init__(self, low: int, high: int) -> None:
        if not 1024 <= low < high <= 65535:
            raise ValueError(f"bad RTP port range {low}-{high}")
        self.low = low + (low % 2)
        self.high = high
        self._next = self.low

    async def bind_pair(
        self, address: str, on_rtp: DatagramHandler, on_rtcp: DatagramHandler
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport, int]:
        """(RTP transport, RTCP transport, RTP port) bound on `address`."""
        loop = asyncio.get_running_loop()
        pairs = (self.high - self.low + 1) // 2
        for _ in range(pairs):
            port = self._next
            self._next += 2
            if self._next + 1 > self.high:
                self._next = self.low
            try:
                rtp, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(on_rtp), local_addr=(address, port)
                )
            except OSError:
                continue
            try:
                rtcp, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(on_rtcp), local_addr=(address, port + 1)
                )
            except OSError:
                with contextlib.suppress(Exception):
                    rtp.close()
                continue
            return rtp, rtcp, port
        raise MediaError(f"no free RTP port pair in {self.low}-{self.high} on {address}")
