"""The composition root: builds every object, starts them in order and stops them in reverse.

Nothing else constructs the platform's objects; tests and the CLI build a `Server` from `Settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from switchboard.apps.calls_api import CallsApi, RetryPolicy
from switchboard.channels.whatsapp.api import build_router as whatsapp_api_router
from switchboard.channels.whatsapp.channel import WhatsAppChannel
from switchboard.channels.whatsapp.graph import GraphClient, GraphSettings
from switchboard.channels.whatsapp.permissions import WhatsAppPermissions
from switchboard.channels.whatsapp.webhooks import WhatsAppWebhooks
from switchboard.config import SenderSettings, Settings
from switchboard.core.bus import InProcessEventBus
from switchboard.core.control import CallControl
from switchboard.core.models import InboundAction, InboundConfiguration, Sender
from switchboard.httpapi.auth import api_key_dependency
from switchboard.httpapi.errors import install_error_handlers
from switchboard.media.embedded import EmbeddedMediaEngine
from switchboard.media.tts import SpeechSynthesizer
from switchboard.store import (
    Database,
    SqlCallRepository,
    SqlDialogRepository,
    SqlPermissionRepository,
    SqlSenderDirectory,
    SqlWebhookLedger,
    migrate,
)

log = logging.getLogger(__name__)


def sender_from_settings(item: SenderSettings) -> Sender:
    return Sender(
        phone_number_id=item.phone_number_id,
        display_phone_number=item.display_phone_number,
        waba_id=item.waba_id,
        access_token=item.access_token,
        app_secret=item.app_secret,
        verify_token=item.verify_token,
        graph_api_url=item.graph_api_url,
        inbound=InboundConfiguration(
            action=InboundAction(item.inbound.action),
            calls_configuration_id=item.inbound.calls_configuration_id,
            scenario_id=item.inbound.scenario_id,
            flow_id=item.inbound.flow_id,
            route_id=item.inbound.route_id,
        ),
    )


@dataclass
class Components:
    """What a server is made of, built at once; `run` starts it and stops it in reverse."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    control: CallControl
    media: EmbeddedMediaEngine
    calls_api: CallsApi
    senders: SqlSenderDirectory
    permissions: WhatsAppPermissions
    webhooks: WhatsAppWebhooks

    @classmethod
    def build(cls, settings: Settings) -> Components:
        data_dir = settings.server.data_dir
        db = Database(settings.database_url)
        http = httpx.AsyncClient(follow_redirects=False)
        senders = SqlSenderDirectory(db)
        bus = InProcessEventBus()
        media = EmbeddedMediaEngine(
            addresses=list(settings.server.media_addresses),
            public_address=settings.server.media_public_address,
            no_media_timeout=settings.server.no_media_timeout_s,
            remote_networks=settings.server.media_remote_networks,
        )
        control = CallControl(
            calls=SqlCallRepository(db),
            dialogs=SqlDialogRepository(db),
            permissions=SqlPermissionRepository(db),
            senders=senders,
            bus=bus,
            media=media,
            synthesizer=SpeechSynthesizer(data_dir / "tts"),
            recordings_dir=data_dir / "recordings",
        )
        graph = GraphClient(
            http,
            GraphSettings(
                version=settings.whatsapp.graph_api_version,
                timeout_s=settings.whatsapp.graph_timeout_s,
                retries=settings.whatsapp.graph_retries,
            ),
        )
        permissions = WhatsAppPermissions(graph, senders, SqlPermissionRepository(db))
        control.register_channel(WhatsAppChannel(graph, senders, permissions))
        calls_api = CallsApi(
            control,
            db,
            http,
            files_dir=data_dir / "files",
            allow_private_urls=settings.server.allow_private_urls,
            retry=RetryPolicy(
                max_delay=settings.api.webhook_retry_max_delay_s,
                give_up_after=settings.api.webhook_give_up_after_s,
                timeout=settings.api.webhook_timeout_s,
            ),
        )
        calls_api.register()
        bus.subscribe(calls_api.on_event, durable=True)
        webhooks = WhatsAppWebhooks(control, senders, SqlWebhookLedger(db), permissions)
        return cls(settings, db, http, control, media, calls_api, senders, permissions, webhooks)

    def routes(self, app: FastAPI) -> None:
        secured = [Depends(api_key_dependency(self.settings.api.keys))]
        app.include_router(self.webhooks.router)
        app.include_router(self.calls_api.router, dependencies=secured)
        whatsapp_api = whatsapp_api_router(
            self.senders, self.permissions, allow_private_urls=self.settings.server.allow_private_urls
        )
        app.include_router(whatsapp_api, dependencies=secured)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        self.settings.server.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate(self.settings.database_url)
        for item in self.settings.whatsapp.senders:
            await self.senders.save(sender_from_settings(item))
        await self.media.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                runners = [
                    tasks.create_task(self.control.run()),
                    tasks.create_task(self.calls_api.run()),
                    tasks.create_task(self.webhooks.run()),
                ]
                try:
                    yield
                finally:
                    with contextlib.suppress(Exception):
                        await self.control.shutdown()
                    for runner in runners:
                        runner.cancel()
        finally:
            await self.media.stop()
            await self.http.aclose()
            await self.db.close()


def build_app(components: Components) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the components behind it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with components.run():
            yield

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        description="WhatsApp Business Calling with an Infobip-compatible Calls API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    components.routes(app)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", tags=["Health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Server:
    """A Switchboard server on a socket. `port` 0 takes a free port (see `.port` after `start`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.components = Components.build(settings)
        self.app = build_app(self.components)
        self._sock = bind_socket(settings.server.host, settings.server.port)
        self.port: int = self._sock.getsockname()[1]
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.server.host}:{self.port}"

    async def serve(self) -> None:
        await self._uvicorn.serve(sockets=[self._sock])

    async def start(self) -> None:
        self._task = asyncio.create_task(self.serve())
        while not self._uvicorn.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._uvicorn.should_exit = True
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
