"""A running Calls API for tests: the real server (`switchboard.server.Server`, built by the composition
root), real SQLite, real `CallControl`, real uvicorn on 127.0.0.1.

Only the edges are passed in as fakes (`Overrides`): the media engine (a small in-test object
implementing `MediaEngine`: the tests say when playback ends and which keys the caller presses), the
WhatsApp channel's signalling and the TTS. A second uvicorn server, `Receiver`, collects webhooks.

Shared by `tests/integration/apps/test_calls_api.py` and `tests/conformance/test_infobip_sdk.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response

from support.fakes import FakeEngine, FakeLeg, FakeSynthesizer
from support.network import RecordingNetwork, ScriptedResolver
from switchboard.apps.calls_api import CallsApi, RetryPolicy
from switchboard.config import Settings, load_settings
from switchboard.core.control import CallControl, InboundCall
from switchboard.core.models import (
    Call,
    Endpoint,
    EndpointType,
    InboundAction,
    InboundTarget,
    PermissionStatus,
)
from switchboard.core.ports import DialResult, PermissionRecord
from switchboard.errors import SwitchboardError
from switchboard.media.engine import WHATSAPP_LEG, LegSpec
from switchboard.server import Overrides, Server
from switchboard.store import Database, SqlPermissionRepository

API_KEY = "test-api-key-123"
SENDER_ID = "100200300"
SENDER_NUMBER = "15550001111"
CALLER = "447700900123"
CONFIG_ID = "my-app"

Network = tuple[ScriptedResolver, RecordingNetwork]


# -- fakes at the edges (media and speech: `support.fakes`) ------------------------------------------


class FakeWhatsApp:
    """The WhatsApp channel's signalling, recorded instead of sent to Meta."""

    endpoint_type = EndpointType.WHATSAPP
    early_media = False

    def __init__(self) -> None:
        self.ops: list[tuple[str, str]] = []

    def leg_spec(self, call: Call) -> LegSpec:
        return WHATSAPP_LEG

    async def prepare_outbound(self, call: Call) -> None:
        if call.from_ not in (SENDER_ID, SENDER_NUMBER):
            raise SwitchboardError(f"from: {call.from_!r} is not a WhatsApp sender of this server")
        call.sender_id = SENDER_ID
        call.from_ = SENDER_NUMBER

    async def pre_answer(self, call: Call, sdp_answer: str) -> None:
        self.ops.append(("pre_accept", call.id))

    async def answer(self, call: Call, sdp_answer: str) -> None:
        self.ops.append(("accept", call.id))

    async def reject(self, call: Call) -> None:
        self.ops.append(("reject", call.id))

    async def hangup(self, call: Call) -> None:
        self.ops.append(("terminate", call.id))

    async def dial(self, call: Call, sdp_offer: str) -> DialResult:
        self.ops.append(("connect", call.id))
        return DialResult(f"wacid.{uuid.uuid4().hex}")


# -- servers ------------------------------------------------------------------------------------------


def reserve_socket() -> socket.socket:
    """A bound, not yet listening TCP socket on 127.0.0.1: connecting to it is refused until served."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Served:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 10)


async def serve(app: FastAPI, sock: socket.socket | None = None) -> Served:
    sock = sock or reserve_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    return Served(server, task, port)


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw)
        return data

    @property
    def type(self) -> str:
        return str(self.json["type"])


@dataclass
class Receiver:
    """An application's webhook endpoint: collects every POST to `/hook`."""

    events: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    audio_fetches: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            raw = await request.body()
            async with self.arrived:
                self.events.append(Received(dict(request.headers), raw))
                self.arrived.notify_all()
            return Response(status_code=200)

        @app.get("/audio.wav")
        async def audio() -> Response:
            self.audio_fetches += 1
            return Response(b"RIFF\x24\x00\x00\x00WAVEfmt ", media_type="audio/wav")

        return app

    async def wait_for(self, event_type: str, call_id: str | None = None, *, within: float = 5) -> Received:
        def find() -> Received | None:
            for item in self.events:
                body = item.json
                if body["type"] == event_type and (call_id is None or body["callId"] == call_id):
                    return item
            return None

        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    def types(self, call_id: str) -> list[str]:
        return [e.type for e in self.events if e.json["callId"] == call_id]


# -- the harness -----------------------------------------------------------------------------------


@dataclass
class Harness:
    server: Server
    engine: FakeEngine
    channel: FakeWhatsApp
    tts: FakeSynthesizer
    client: httpx.AsyncClient

    @property
    def control(self) -> CallControl:
        return self.server.components.control

    @property
    def api(self) -> CallsApi:
        return self.server.components.calls_api

    @property
    def permissions(self) -> SqlPermissionRepository:
        return self.server.components.permission_repository

    @property
    def db(self) -> Database:
        return self.server.components.db

    @property
    def base_url(self) -> str:
        return self.server.url

    async def inbound_call(self, caller: str = CALLER) -> str:
        call = await self.control.receive_inbound(
            InboundCall(
                endpoint=Endpoint(EndpointType.WHATSAPP, phone_number=caller),
                to=SENDER_NUMBER,
                peer_call_id=f"wacid.{uuid.uuid4().hex}",
                remote_offer="v=0\r\ns=caller offer\r\n",
                target=InboundTarget(InboundAction.SUBSCRIPTION, CONFIG_ID),
                sender_id=SENDER_ID,
            )
        )
        assert call is not None
        return call.id

    def leg(self, call_id: str) -> FakeLeg:
        return self.engine.legs[call_id]

    async def grant_permission(self, user: str) -> None:
        await self.permissions.save(PermissionRecord(SENDER_ID, user, status=PermissionStatus.PERMANENT))

    async def subscribe(
        self,
        notify_url: str,
        *,
        events: list[str] | None = None,
        security: dict[str, Any] | None = None,
        config_id: str = CONFIG_ID,
    ) -> str:
        profile: dict[str, Any] = {"webhook": {"notifyUrl": notify_url}}
        if security:
            profile["security"] = security
        r = await self.client.post(
            "/subscriptions/1/subscription/VOICE_VIDEO",
            json={
                "name": "test",
                "events": events
                or [
                    "CALL_RECEIVED",
                    "CALL_ESTABLISHED",
                    "CALL_FINISHED",
                    "CALL_FAILED",
                    "SAY_FINISHED",
                    "PLAY_FINISHED",
                    "DTMF_CAPTURED",
                    "CALL_RECORDING_READY",
                ],
                "criteria": [{"callsConfigurationId": config_id}],
                "profile": profile,
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["subscriptionId"])


def harness_settings(
    tmp_path: Path,
    retry: RetryPolicy | None,
    *,
    allow_private_urls: bool = True,
    graph_api_url: str | None = None,
) -> Settings:
    retry = retry or RetryPolicy(base_delay=0.05, max_delay=0.2, give_up_after=60, timeout=2)
    return load_settings(
        overrides={
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "data_dir": tmp_path / "data",
                "allow_private_urls": allow_private_urls,
            },
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'switchboard.sqlite'}"},
            "api": {
                "keys": [API_KEY],
                "webhook_retry_max_delay_s": retry.max_delay,
                "webhook_give_up_after_s": retry.give_up_after,
                "webhook_timeout_s": retry.timeout,
                "webhook_retry_base_delay_s": retry.base_delay,
            },
            "whatsapp": {
                "senders": [
                    {
                        "phone_number_id": SENDER_ID,
                        "display_phone_number": SENDER_NUMBER,
                        "waba_id": "waba-1",
                        "access_token": "token",
                        "app_secret": "app-secret",
                        "verify_token": "verify",
                        "graph_api_url": graph_api_url or "http://127.0.0.1:9",
                        "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIG_ID},
                    }
                ]
            },
        },
        environ={},
    )


@contextlib.asynccontextmanager
async def running_harness(
    tmp_path: Path,
    *,
    retry: RetryPolicy | None = None,
    create_config: bool = True,
    network: Network | None = None,
    allow_private_urls: bool = True,
    graph_api_url: str | None = None,
) -> AsyncIterator[Harness]:
    """`network` (a resolver and a network backend) carries the server's outgoing HTTP instead of the
    machine's."""
    engine = FakeEngine(write_recordings=True)
    channel = FakeWhatsApp()
    tts = FakeSynthesizer(tmp_path)
    overrides = Overrides(
        media=engine,
        speech=tts,
        channels=[channel],
        resolver=network[0] if network else None,
        network=network[1] if network else None,
    )
    settings = harness_settings(
        tmp_path, retry, allow_private_urls=allow_private_urls, graph_api_url=graph_api_url
    )
    async with Server(settings, overrides) as server:
        client = httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"App {API_KEY}"}, timeout=10
        )
        harness = Harness(server, engine, channel, tts, client)
        try:
            if create_config:
                r = await client.post("/calls/1/configurations", json={"id": CONFIG_ID, "name": "My app"})
                assert r.status_code == 201, r.text
            yield harness
        finally:
            await client.aclose()


@contextlib.asynccontextmanager
async def running_receiver(sock: socket.socket | None = None) -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    served = await serve(receiver.app(), sock)
    try:
        yield receiver, served.url + "/hook"
    finally:
        await served.stop()
