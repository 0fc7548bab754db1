"""End-to-end fixtures: a real server, the Meta emulator (a real WebRTC WhatsApp user) and a real HTTP
app receiving the Calls API's webhooks. Nothing is mocked between them; all on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response

from switchboard.config import Settings, load_settings
from switchboard.emulator import MetaEmulator
from switchboard.server import Server

PHONE_NUMBER_ID = "100200300"
DISPLAY_NUMBER = "15550100200"
WABA_ID = "900800700"
CONFIGURATION_ID = "e2e-app"
API_KEY = "e2e-api-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class WebhookApp:
    """A real HTTP server that receives the platform's event webhooks."""

    port: int
    events: list[dict[str, Any]] = field(default_factory=list)
    raw: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    _new: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/events")
        async def receive(request: Request) -> Response:
            body = await request.body()
            if self.status >= 300:
                return Response(status_code=self.status)
            self.raw.append((dict(request.headers), body))
            async with self._new:
                self.events.append(json.loads(body))
                self._new.notify_all()
            return Response(status_code=200)

        return app

    async def start(self) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = None

    async def wait_for(
        self,
        type_: str,
        call_id: str | None = None,
        timeout: float = 30.0,
        exclude: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for event in self.events:
                if event.get("callId") in exclude:
                    continue
                if event.get("type") == type_ and (call_id is None or event.get("callId") == call_id):
                    return event
            return None

        async def wait() -> dict[str, Any]:
            async with self._new:
                while (found := find()) is None:
                    await self._new.wait()
                return found

        return await asyncio.wait_for(wait(), timeout)

    def types(self, call_id: str) -> list[str]:
        return [e["type"] for e in self.events if e.get("callId") == call_id]


@dataclass
class Platform:
    server: Server
    emulator: MetaEmulator
    app: WebhookApp
    api: httpx.AsyncClient
    settings: Settings
    app_secret: str

    async def grant_permission(self, wa_id: str, *, permanent: bool = False) -> None:
        """The WhatsApp user accepts a call permission request; returns once the server has processed
        Meta's webhook for it (webhook items are processed after Meta's delivery is answered)."""
        await self.emulator.user(wa_id).reply_permission(PHONE_NUMBER_ID, accept=True, permanent=permanent)
        path = f"/whatsapp/1/senders/{DISPLAY_NUMBER}/calls/{wa_id}/permissions"
        async with asyncio.timeout(10):
            while (await self.api.get(path)).json()["status"] == "NO_PERMISSION":
                await asyncio.sleep(0.05)

    async def subscribe(self, events: list[str] | None = None, **profile: Any) -> dict[str, Any]:
        await self.api.post("/calls/1/configurations", json={"id": CONFIGURATION_ID, "name": "e2e"})
        body = {
            "name": "e2e events",
            "events": events
            or [
                "CALL_RECEIVED",
                "CALL_STARTED",
                "CALL_RINGING",
                "CALL_PRE_ESTABLISHED",
                "CALL_ESTABLISHED",
                "CALL_FINISHED",
                "CALL_FAILED",
                "PLAY_FINISHED",
                "SAY_FINISHED",
                "DTMF_CAPTURED",
                "CALL_RECORDING_READY",
                "DIALOG_CREATED",
                "DIALOG_ESTABLISHED",
                "DIALOG_FINISHED",
                "DIALOG_FAILED",
            ],
            "criteria": [{"callsConfigurationId": CONFIGURATION_ID}],
            "profile": {"webhook": {"notifyUrl": self.app.url}, **profile},
        }
        response = await self.api.post("/subscriptions/1/subscription/VOICE_VIDEO", json=body)
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()
        return data


def platform_settings(
    tmp_path: Path,
    port: int,
    graph_url: str,
    app_secret: str,
    api: dict[str, Any] | None = None,
    database_url: str | None = None,
    sip: dict[str, Any] | None = None,
    **server: Any,
) -> Settings:
    return load_settings(
        overrides={
            **({"sip": sip} if sip is not None else {}),
            "server": {
                "host": "127.0.0.1",
                "port": port,
                "data_dir": tmp_path / "data",
                "allow_private_urls": True,
                "media_remote_networks": ["127.0.0.0/8"],
                **server,
            },
            "api": {"admin_keys": [API_KEY], **(api or {})},
            "database": {"url": database_url},
            "whatsapp": {
                "graph_retries": 2,
                "graph_timeout_s": 2.0,
                "senders": [
                    {
                        "phone_number_id": PHONE_NUMBER_ID,
                        "display_phone_number": DISPLAY_NUMBER,
                        "waba_id": WABA_ID,
                        "access_token": "e2e-access-token",
                        "app_secret": app_secret,
                        "verify_token": "e2e-verify",
                        "graph_api_url": graph_url,
                        "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIGURATION_ID},
                    }
                ],
            },
        },
        environ={},
    )


@contextlib.asynccontextmanager
async def running_platform(
    tmp_path: Path,
    api: dict[str, Any] | None = None,
    database_url: str | None = None,
    sip: dict[str, Any] | None = None,
    **server: Any,
) -> AsyncIterator[Platform]:
    app_secret = secrets.token_hex(16)
    port = free_port()
    emulator = MetaEmulator(
        f"http://127.0.0.1:{port}/webhooks/whatsapp",
        recording_dir=tmp_path / "heard",
        webhook_retry_delays=(0.2, 0.5, 1.0),
    )
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, "e2e-access-token", app_secret)
    app = WebhookApp(free_port())
    async with emulator:
        settings = platform_settings(
            tmp_path, port, emulator.graph_url, app_secret, api, database_url, sip, **server
        )
        await app.start()
        try:
            async with (
                Server(settings) as srv,
                httpx.AsyncClient(
                    base_url=srv.url, headers={"Authorization": f"App {API_KEY}"}, timeout=30
                ) as client,
            ):
                yield Platform(srv, emulator, app, client, settings, app_secret)
        finally:
            await app.stop()
