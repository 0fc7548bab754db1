"""SIP over UDP, TCP and TLS (RFC 3261 §18): the asyncio shell that moves bytes.

A transport parses what it receives and hands each message with the `Peer` it came from to its owner; it
never interprets a message. Stream connections (accepted or opened) are kept by remote address so
responses and in-dialog requests reuse them; their reader tasks are started through the owner's `spawn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, cast

from switchboard.channels.sip.message import Message, SipParseError, StreamParser, parse_message

log = logging.getLogger(__name__)

TransportName = Literal["udp", "tcp", "tls"]
DEFAULT_PORTS: dict[str, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """`udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:0.0.0.0:5061` (port 0: any free port)."""

    transport: TransportName
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenSpec:
        transport, sep, rest = text.partition(":")
        if not sep or transport not in ("udp", "tcp", "tls"):
            raise ValueError(f"{text!r}: expected udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT")
        host, sep, port = rest.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"{text!r}: expected {transport}:HOST:PORT")
        name: TransportName = "udp" if transport == "udp" else "tcp" if transport == "tcp" else "tls"
        return cls(name, host, int(port))

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from or goes to."""

    transport: TransportName
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


MessageSink = Callable[[Message, Peer], None]
FailureSink = Callable[[Peer], None]
InUse = Callable[[Peer], bool]
"""Whether a dialog or transaction still uses the connection to a peer (it is then never idle)."""


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """What one TCP/TLS listener grants its clients: a connection that carries nothing for `idle_s` and
    that no dialog uses is closed; an accepted connection beyond `max_inbound` is closed at once; a
    message must be complete within `message_s` of its first byte and `max_buffered` bytes (so a client
    trickling bytes, slow-loris, holds nothing for long)."""

    idle_s: float = 300.0
    message_s: float = 32.0
    max_inbound: int = 1024
    max_buffered: int = 81_920

    def __post_init__(self) -> None:
        if self.idle_s <= 0 or self.message_s <= 0 or self.max_inbound < 1 or self.max_buffered < 1024:
            raise ValueError("stream limits: positive times, max_inbound >= 1, max_buffered >= 1024")


DEFAULT_STREAM_LIMITS = StreamLimits()


class ConnectionClock:
    """When a stream connection is due to be closed (sans-I/O: fed the time of each event)."""

    def __init__(self, limits: StreamLimits, now: float) -> None:
        self._limits = limits
        self.last_activity = now
        self.partial_since: float | None = None

    def traffic(self, now: float) -> None:
        """Bytes were sent or received at `now`."""
        self.last_activity = now

    def received(self, now: float, *, completed: bool, partial: bool) -> None:
        """Bytes arrived at `now`: `completed` whether they ended a message, `partial` whether an
        incomplete message is left (its clock starts when it does)."""
        self.last_activity = now
        if not partial:
            self.partial_since = None
        elif completed or self.partial_since is None:
            self.partial_since = now

    def deadline(self) -> tuple[float, str]:
        """The time the connection is due to close unless more traffic comes, and why."""
        idle = (self.last_activity + self._limits.idle_s, "idle")
        if self.partial_since is None:
            return idle
        return min(idle, (self.partial_since + self._limits.message_s, "message incomplete"))


class UdpTransport(asyncio.DatagramProtocol):
    def __init__(self, sink: MessageSink) -> None:
        self._sink = sink
        self._transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("", 0)

    async def start(self, spec: ListenSpec) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(spec.host, spec.port))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.address = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not data.strip(b"\r\n"):
            return  # a keep-alive
        try:
            message = parse_message(data)
        except SipParseError as exc:
            log.info("dropped a SIP datagram from %s:%s: %s", addr[0], addr[1], exc)
            return
        self._sink(message, Peer("udp", str(addr[0]), int(addr[1])))

    def send(self, data: bytes, peer: Peer) -> None:
        if self._transport is not None:
            self._transport.sendto(data, (peer.host, peer.port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class StreamTransport:
    """TCP, or TLS when given a server context (and a client context for connections we open)."""

    def __init__(
        self,
        name: TransportName,
        sink: MessageSink,
        spawn: Callable[[Coroutine[Any, Any, object]], object],
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        on_failure: FailureSink | None = None,
        limits: StreamLimits = DEFAULT_STREAM_LIMITS,
        in_use: InUse = lambda peer: False,
    ) -> None:
        self.name = name
        self._sink = sink
        self._on_failure = on_failure
        self._spawn = spawn
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._limits = limits
        self._in_use = in_use
        self._server: asyncio.Server | None = None
        self._writers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._clocks: dict[tuple[str, int], ConnectionClock] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._inbound = 0
        self.address: tuple[str, int] = ("", 0)

    @property
    def connections(self) -> int:
        """Open connections, accepted and opened."""
        return len(self._writers)

    async def start(self, spec: ListenSpec) -> None:
        self._server = await asyncio.start_server(
            self._accepted, spec.host, spec.port, ssl=self._server_ssl, limit=2**16
        )
        self.address = self._server.sockets[0].getsockname()[:2]

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        if self._inbound >= self._limits.max_inbound:
            log.info("refusing a SIP connection from %s:%s: %d open", host, port, self._inbound)
            writer.close()
            return
        self._inbound += 1
        self._writers[(host, port)] = writer
        self._spawn(self._read(reader, writer, Peer(self.name, host, port), inbound=True))

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer, *, inbound: bool = False
    ) -> None:
        key = (peer.host, peer.port)
        parser = StreamParser(self._limits.max_buffered)
        loop = asyncio.get_running_loop()
        clock = self._clocks[key] = ConnectionClock(self._limits, loop.time())
        try:
            while True:
                due, why = clock.deadline()
                try:
                    async with asyncio.timeout_at(due):
                        data = await reader.read(65536)
                except TimeoutError:
                    if why == "idle" and self._in_use(peer):
                        clock.traffic(loop.time())
                        continue
                    log.info("closing the SIP connection %s:%s: %s", peer.host, peer.port, why)
                    return
                if not data:
                    return
                messages = parser.feed(data)
                for message in messages:
                    self._sink(message, peer)
                clock.received(loop.time(), completed=bool(messages), partial=parser.buffered > 0)
        except SipParseError as exc:
            log.info("closing the SIP connection from %s:%s: %s", peer.host, peer.port, exc)
        except (ConnectionError, ssl.SSLError) as exc:
            log.debug("SIP connection %s:%s failed: %s", peer.host, peer.port, exc)
        finally:
            if self._writers.get(key) is writer:
                del self._writers[key]
                self._clocks.pop(key, None)
            if inbound:
                self._inbound -= 1
            writer.close()

    def send(self, data: bytes, peer: Peer) -> None:
        key = (peer.host, peer.port)
        if (writer := self._writers.get(key)) is not None and not writer.is_closing():
            writer.write(data)
            if (clock := self._clocks.get(key)) is not None:
                clock.traffic(asyncio.get_running_loop().time())
            return
        if key in self._pending:
            self._pending[key].append(data)
            return
        self._pending[key] = [data]
        self._spawn(self._connect(peer))

    async def _connect(self, peer: Peer) -> None:
        key = (peer.host, peer.port)
        context = self._client_ssl if self.name == "tls" else None
        if self.name == "tls" and context is None:
            context = ssl.create_default_context()
        try:
            reader, writer = await asyncio.open_connection(peer.host, peer.port, ssl=context, limit=2**16)
        except (OSError, ssl.SSLError) as exc:
            log.info("could not connect to %s:%s:%s: %s", peer.transport, peer.host, peer.port, exc)
            self._pending.pop(key, None)
            if self._on_failure is not None:
                self._on_failure(peer)
            return
        self._writers[key] = writer
        for data in self._pending.pop(key, []):
            writer.write(data)
        await self._read(reader, writer, peer)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers.values()):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._writers.clear()
