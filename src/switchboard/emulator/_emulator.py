"""`MetaEmulator`: the Graph API server, the webhook sender and the emulated users, in one object."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from pathlib import Path
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from ._control import add_control_routes
from ._graph import create_graph_app
from ._home import add_home_route
from ._phone import add_phone_routes
from ._state import BusinessNumber, EmulatorState, Faults, PermissionRecord, RecordedRequest
from ._user import WhatsAppUser, close_call
from ._webhooks import WebhookSender


class PortUnavailable(OSError):
    """The emulator's address cannot be bound; the message names it."""

    def __str__(self) -> str:
        return str(self.strerror)


class MetaEmulator:
    """Plays Meta's Cloud API for a server under test.

    The server's Graph API base URL is `graph_url` (no version); it calls
    `{graph_url}/v23.0/{phone_number_id}/calls` (any `vNN.N` works). Webhooks go to `webhook_url`.
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        media_addresses: tuple[str, ...] = ("127.0.0.1",),
        recording_dir: str | Path | None = None,
        webhook_timeout: float = 20.0,
        webhook_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0),
        accept_timeout: float = 60.0,
        ring_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.webhooks = WebhookSender(webhook_url, timeout=webhook_timeout, retry_delays=webhook_retry_delays)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if recording_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="switchboard-emulator-")
            recording_dir = self._tmp.name
        self.state = EmulatorState(
            self.webhooks,
            media_addresses=tuple(media_addresses),
            recording_dir=Path(recording_dir),
            accept_timeout=accept_timeout,
            ring_timeout=ring_timeout,
        )
        self.app: FastAPI = create_graph_app(self.state)
        add_home_route(self.app, self.state)
        add_phone_routes(self.app, self.state)
        add_control_routes(self.app, self.state)
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None

    # --- configuration ----------------------------------------------------------------------

    def add_business_number(
        self,
        phone_number_id: str,
        display_phone_number: str,
        waba_id: str,
        access_token: str,
        app_secret: str,
    ) -> BusinessNumber:
        number = BusinessNumber(phone_number_id, display_phone_number, waba_id, access_token, app_secret)
        self.state.add_number(number)
        return number

    def user(self, wa_id: str, name: str = "WhatsApp User", *, username: str | None = None) -> WhatsAppUser:
        """The emulated user `wa_id` (created on first use)."""
        existing = self.state.users.get(wa_id)
        if existing is not None:
            return existing
        return WhatsAppUser(self.state, wa_id, name, username=username)

    def permission(self, user: WhatsAppUser | str, phone_number_id: str) -> PermissionRecord:
        """The permission record of (business number, user): `.grant(permanent=...)`, `.revoke()`,
        `.status`, `.request_times` (clear it to reset the request limits)."""
        wa_id = user if isinstance(user, str) else user.wa_id
        return self.state.permission(phone_number_id, wa_id)

    @property
    def faults(self) -> Faults:
        """`faults.fail_next(action, status=500, count=1)`, `faults.hang_next(action, seconds)`."""
        return self.state.faults

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every Graph API request, in order; each unpacks as `(method, path, json)`."""
        return self.state.requests

    @property
    def graph_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def phone_url(self) -> str:
        return f"{self.graph_url}/phone"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise PortUnavailable(
                exc.errno, f"the Meta emulator cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._serve_task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serve_task.done():
                await self._serve_task
                raise RuntimeError("emulator server did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for call in list(self.state.calls.values()):
            if hasattr(call, "_tasks"):
                await close_call(call)  # type: ignore[arg-type]
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
        self._server = None
        self._serve_task = None
        await self.webhooks.aclose()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> MetaEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
