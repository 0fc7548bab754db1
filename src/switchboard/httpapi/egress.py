"""The platform's outgoing HTTP client: every connection goes only where the `UrlPolicy` permits.

The check and the connection use one resolution: `GuardedBackend` resolves the name, checks every
address and dials a checked address, so a name that answers differently a moment later (DNS rebinding)
cannot steer the connection elsewhere. The request keeps its URL, so the Host header and TLS (SNI and
certificate verification) stay on the name. Connections are pooled per name, and a pooled connection
was made to a checked address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore
import httpx

from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy


class BlockedConnection(httpcore.ConnectError):
    """The policy refused the connection (httpx raises it as `httpx.ConnectError`)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses `policy` permits."""

    def __init__(self, policy: UrlPolicy, network: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._policy.addresses(host, port)
        except UnsafeUrl as exc:
            raise BlockedConnection(str(exc)) from None
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took longer than {timeout} s") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._network.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedConnection("Unix sockets are not reachable through URLs")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its pool, its error mapping) over a `GuardedBackend`."""

    def __init__(self, policy: UrlPolicy, network: httpcore.AsyncNetworkBackend | None = None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy, network),
        )


def guarded_client(
    policy: UrlPolicy, network: httpcore.AsyncNetworkBackend | None = None
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose connections obey `policy`; redirects are not followed and proxy
    variables in the environment are ignored (a proxy would make the connection elsewhere)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, network), follow_redirects=False, trust_env=False
    )
