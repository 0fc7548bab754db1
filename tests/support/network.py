"""A network for outgoing HTTP that tests control: a resolver whose answers they script and a network
backend that records where it was asked to connect and never leaves the machine."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpcore

OK = [b"HTTP/1.1 200 OK\r\n", b"Content-Length: 2\r\n", b"\r\n", b"ok"]


@dataclass
class ScriptedResolver:
    """Answers each name from its script, one entry per lookup; the last entry repeats."""

    script: dict[str, list[list[str]]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.script.get(host)
        if not answers:
            raise OSError(f"unknown name {host!r}")
        return answers.pop(0) if len(answers) > 1 else answers[0]


class RecordedStream(httpcore.AsyncMockStream):
    def __init__(self, buffer: list[bytes], network: RecordingNetwork) -> None:
        super().__init__(list(buffer))
        self._network = network

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self._network.tls_names.append(server_hostname)
        return self


@dataclass
class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Connects nowhere: records each dialled (address, port) and answers `response`; `loopback`
    dials 127.0.0.1 for real (the only address a test may reach)."""

    response: list[bytes] = field(default_factory=lambda: list(OK))
    loopback: bool = False
    dialled: list[tuple[str, int]] = field(default_factory=list)
    tls_names: list[str | None] = field(default_factory=list)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dialled.append((host, port))
        if self.loopback and host == "127.0.0.1":
            return await httpcore.AnyIOBackend().connect_tcp(host, port, timeout=timeout)
        return RecordedStream(self.response, self)

    async def sleep(self, seconds: float) -> None:
        await httpcore.AnyIOBackend().sleep(seconds)
