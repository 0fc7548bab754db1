"""The composition root: builds every object, starts them in order and stops them in reverse.

Nothing else constructs the platform's objects; tests and the CLI build a `Server` from `Settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import httpcore
import httpx
import uvicorn
from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from switchboard.apps.calls_api import CallsApi, RetryPolicy
from switchboard.apps.routing import CallRouting
from switchboard.channels.sip.api import build_router as sip_trunks_router
from switchboard.channels.sip.channel import SipChannel
from switchboard.channels.sip.endpoint import EndpointConfig, SipEndpoint
from switchboard.channels.sip.registrations import TrunkRegistrations
from switchboard.channels.sip.transport import ListenSpec, StreamLimits
from switchboard.channels.sip.trunks import NoRegistrations, Registrations, TrunkDirectory
from switchboard.channels.websocket.api import build_router as media_stream_configs_router
from switchboard.channels.websocket.configs import MediaStreamConfigs
from switchboard.channels.whatsapp.api import build_admin_router as whatsapp_admin_router
from switchboard.channels.whatsapp.api import build_router as whatsapp_api_router
from switchboard.channels.whatsapp.channel import WhatsAppChannel
from switchboard.channels.whatsapp.graph import GraphClient, GraphSettings
from switchboard.channels.whatsapp.permissions import WhatsAppPermissions
from switchboard.channels.whatsapp.senders import Sender, SenderDirectory
from switchboard.channels.whatsapp.webhooks import WhatsAppWebhooks
from switchboard.config import SenderSettings, Settings, SipSettings
from switchboard.core.admission import CallPermissionPolicy
from switchboard.core.bus import InProcessEventBus
from switchboard.core.clock import LoopClock
from switchboard.core.content import ContentResolver, Synthesizer
from switchboard.core.control import CallControl
from switchboard.core.models import EndpointType, InboundAction, InboundTarget
from switchboard.core.nodes import NodeWatch
from switchboard.core.ports import CallChannel
from switchboard.core.services import RecordingTargets
from switchboard.httpapi.auth import ApiKey, Scope, api_key_check, api_key_dependency
from switchboard.httpapi.egress import guarded_client
from switchboard.httpapi.errors import install_error_handlers
from switchboard.httpapi.fetch import UrlAudioFetcher
from switchboard.httpapi.forwarding import ForwardingMiddleware
from switchboard.httpapi.limits import MEGABYTE, BodyLimit, BodyLimitMiddleware
from switchboard.httpapi.urls import Resolver, UrlPolicy, parse_networks, system_resolver
from switchboard.media.embedded import EmbeddedMediaEngine
from switchboard.media.engine import MediaEngine, MediaLocator, RecordingFormat
from switchboard.media.tts import SpeechSynthesizer
from switchboard.runtime import http_parser_name
from switchboard.store import (
    Database,
    SqlCallRepository,
    SqlChannelRecords,
    SqlDialogRepository,
    SqlPermissionRepository,
    migrate,
)
from switchboard.store.audio import SqlAudioStore
from switchboard.store.jobs import SqlJobQueue
from switchboard.store.nodes import SqlNodes
from switchboard.store.routing import SqlRouteRepository, SqlRoutingRecordings

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = MEGABYTE
"""Meta's call and message notifications are a few kilobytes; nothing it sends comes near this."""


def sender_from_settings(item: SenderSettings) -> Sender:
    return Sender(
        phone_number_id=item.phone_number_id,
        display_phone_number=item.display_phone_number,
        waba_id=item.waba_id,
        access_token=item.access_token,
        app_secret=item.app_secret,
        verify_token=item.verify_token,
        graph_api_url=item.graph_api_url,
        inbound=InboundTarget(InboundAction(item.inbound.action), item.inbound.target_id),
    )


class LocatedSpeech:
    """Speech rendered to files by `SpeechSynthesizer`, named as locators for the media engine."""

    def __init__(self, synthesizer: SpeechSynthesizer) -> None:
        self._synthesizer = synthesizer

    async def synthesize(
        self, text: str, *, language: str, speech_rate: float, voice_gender: str | None
    ) -> MediaLocator:
        path = await self._synthesizer.synthesize(
            text, language=language, speech_rate=speech_rate, voice_gender=voice_gender
        )
        return MediaLocator.for_path(path)


def recording_targets(directory: Path) -> RecordingTargets:
    def target(call_id: str, recording_id: str, fmt: RecordingFormat) -> MediaLocator:
        suffix = "wav" if fmt is RecordingFormat.WAV else "ogg"
        return MediaLocator.for_path(directory / f"{call_id}-{recording_id}.{suffix}")

    return target


def node_identity(settings: Settings) -> str:
    """`[server] node_id`, or an id made on first start and kept in the data directory."""
    if settings.server.node_id:
        return settings.server.node_id
    path = settings.server.data_dir / "node-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        node_id = f"node-{uuid.uuid4().hex[:12]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(node_id + "\n")
        return node_id


def build_media(settings: Settings) -> MediaEngine:
    """The media engine named by `[media] engine`."""
    match settings.media.engine:
        case "embedded":
            return EmbeddedMediaEngine(
                addresses=list(settings.server.media_addresses),
                public_address=settings.server.media_public_address,
                no_media_timeout=settings.server.no_media_timeout_s,
                remote_networks=settings.server.media_remote_networks,
                max_prompt_seconds=settings.media.max_prompt_seconds,
                rtp_ports=settings.sip.rtp_ports if settings.sip else (20000, 29999),
            )


def build_sip(settings: SipSettings, trunks: TrunkDirectory, control: CallControl) -> SipChannel:
    """The SIP channel on `[sip] listen` (its sockets open when it runs)."""
    tls = None
    if settings.tls_certificate is not None and settings.tls_key is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.tls_certificate, settings.tls_key)
    config = EndpointConfig(
        listen=tuple(ListenSpec.parse(spec) for spec in settings.listen),
        public_address=settings.public_address,
        tls_context=tls,
        stream_limits=StreamLimits(
            idle_s=settings.connection_idle_s,
            message_s=settings.message_timeout_s,
            max_inbound=settings.max_connections,
            max_buffered=settings.max_connection_buffer,
        ),
    )
    endpoint = SipEndpoint(config)
    registrations = TrunkRegistrations(
        trunks, lambda: endpoint.now, algorithms=tuple(dict.fromkeys(settings.digest_algorithms))
    )
    endpoint.registration = registrations
    channel = SipChannel(endpoint, trunks, registrations)
    channel.attach(control)
    return channel


@dataclass
class Overrides:
    """Parts a test passes in instead of the real ones (the rest is wired as in production)."""

    media: MediaEngine | None = None
    speech: Synthesizer | None = None
    channels: list[CallChannel] = field(default_factory=list)
    """Registered after (and so instead of) the built-in channel of the same endpoint type."""
    resolver: Resolver | None = None
    """Resolves the names in outgoing URLs (default: the system's resolver)."""
    network: httpcore.AsyncNetworkBackend | None = None
    """Carries outgoing HTTP connections once the URL policy allowed them (default: the real network)."""


@dataclass
class Components:
    """What a server is made of, built at once; `run` starts it and stops it in reverse."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    control: CallControl
    media: MediaEngine
    calls_api: CallsApi
    routing: CallRouting
    senders: SenderDirectory
    permissions: WhatsAppPermissions
    webhooks: WhatsAppWebhooks
    permission_repository: SqlPermissionRepository
    urls: UrlPolicy
    nodes: SqlNodes
    peers: httpx.AsyncClient
    """Talks to the other nodes (forwarded requests); not the guarded client: nodes are internal."""
    clock: LoopClock
    trunks: TrunkDirectory
    media_stream_configs: MediaStreamConfigs
    registrations: Registrations = field(default_factory=NoRegistrations)
    sip: SipChannel | None = None
    bound_url: str | None = None
    """http://host:port as bound (set by `Server`), the default internal URL."""

    @classmethod
    def build(cls, settings: Settings, overrides: Overrides | None = None) -> Components:
        overrides = overrides or Overrides()
        data_dir = settings.server.data_dir
        db = Database(settings.database_url)
        urls = UrlPolicy(
            allow_private=settings.server.allow_private_urls,
            allowed_networks=parse_networks(settings.server.allowed_url_networks),
            resolver=overrides.resolver or system_resolver,
        )
        http = guarded_client(urls, overrides.network)
        records = SqlChannelRecords(db)
        senders = SenderDirectory(records)
        permission_repository = SqlPermissionRepository(db)
        bus = InProcessEventBus()
        media = overrides.media or build_media(settings)
        speech = overrides.speech or LocatedSpeech(SpeechSynthesizer(data_dir / "tts"))
        fetcher = UrlAudioFetcher(http, data_dir / "files" / "url-cache", urls=urls)
        node_id = node_identity(settings)
        control = CallControl(
            calls=SqlCallRepository(db, node_id),
            dialogs=SqlDialogRepository(db),
            bus=bus,
            media=media,
            content=ContentResolver(SqlAudioStore(db), fetcher, speech),
            recording_targets=recording_targets(data_dir / "recordings"),
            jobs=SqlJobQueue(db, node_id),
            shutdown_grace_s=settings.server.shutdown_grace_s,
        )
        clock = LoopClock()
        control.add_outbound_policy(EndpointType.WHATSAPP, CallPermissionPolicy(permission_repository, clock))
        graph = GraphClient(
            http,
            GraphSettings(
                version=settings.whatsapp.graph_api_version,
                timeout_s=settings.whatsapp.graph_timeout_s,
                retries=settings.whatsapp.graph_retries,
            ),
        )
        permissions = WhatsAppPermissions(graph, senders, permission_repository)
        control.register_channel(WhatsAppChannel(graph, senders, permissions))
        trunks = TrunkDirectory(records)
        sip = build_sip(settings.sip, trunks, control) if settings.sip is not None else None
        if sip is not None:
            control.register_channel(sip)
        for channel in overrides.channels:
            control.register_channel(channel)
        calls_api = CallsApi(
            control,
            db,
            http,
            files_dir=data_dir / "files",
            urls=urls,
            retry=RetryPolicy(
                base_delay=settings.api.webhook_retry_base_delay_s,
                max_delay=settings.api.webhook_retry_max_delay_s,
                give_up_after=settings.api.webhook_give_up_after_s,
                timeout=settings.api.webhook_timeout_s,
                lease=settings.api.webhook_lease_s,
            ),
            node_id=node_id,
        )
        control.register_application(calls_api)
        bus.subscribe(calls_api.on_event, durable=True)
        routing = CallRouting(
            control,
            SqlRouteRepository(db),
            SqlRoutingRecordings(db),
            http=http,
            urls=urls,
            time_zone=ZoneInfo(settings.routing.time_zone),
        )
        control.register_application(routing)
        bus.subscribe(routing.on_event)
        nodes = SqlNodes(db, node_id, timeout_s=settings.server.node_timeout_s)
        webhooks = WhatsAppWebhooks(control, senders, control.jobs, permissions, owners=nodes)
        control.jobs.register(webhooks)
        return cls(
            settings,
            db,
            http,
            control,
            media,
            calls_api,
            routing,
            senders,
            permissions,
            webhooks,
            permission_repository,
            urls,
            nodes,
            httpx.AsyncClient(),
            clock,
            trunks=trunks,
            media_stream_configs=MediaStreamConfigs(records),
            sip=sip,
            registrations=sip.registrations if sip and sip.registrations else NoRegistrations(),
        )

    def body_limits(self) -> list[BodyLimit]:
        """Per-route body limits; every other route takes at most `limits.MAX_API_BODY`."""
        return [
            BodyLimit("POST", "/webhooks/whatsapp", MAX_WEBHOOK_BODY),
            BodyLimit(
                "POST",
                "/calls/1/files",
                self.settings.api.max_upload_bytes,
                field="file",
                setting="[api] max_upload_bytes",
            ),
        ]

    def routes(self, app: FastAPI) -> None:
        keys = [ApiKey.of(key, scopes) for key, scopes in self.settings.api.all_keys()]
        application = [Depends(api_key_dependency(keys, Scope.APPLICATION))]
        admin = [Depends(api_key_dependency(keys, Scope.ADMIN))]
        app.include_router(self.webhooks.router)
        app.include_router(self.calls_api.router, dependencies=application)
        app.include_router(self.routing.router, dependencies=application)
        app.include_router(whatsapp_api_router(self.permissions), dependencies=application)
        app.include_router(sip_trunks_router(self.trunks, self.registrations), dependencies=application)
        app.include_router(
            media_stream_configs_router(self.media_stream_configs, urls=self.urls), dependencies=application
        )
        app.include_router(whatsapp_admin_router(self.senders, urls=self.urls), dependencies=admin)

    def forwarding(self, app: FastAPI) -> None:
        """Pass a call's requests on to the node that carries it (several nodes on one database)."""
        keys = [ApiKey.of(key, scopes) for key, scopes in self.settings.api.all_keys()]
        app.add_middleware(
            ForwardingMiddleware,
            owners=self.nodes,
            http=self.peers,
            is_local=self.control.is_live,
            authorized=api_key_check(keys, Scope.APPLICATION),
        )

    @property
    def internal_url(self) -> str:
        server = self.settings.server
        return server.internal_url or self.bound_url or f"http://{server.host}:{server.port}"

    def node_watch(self) -> NodeWatch:
        server = self.settings.server
        return NodeWatch(
            self.nodes,
            self.control,
            self.clock,
            url=self.internal_url,
            interval_s=server.heartbeat_interval_s,
            timeout_s=server.node_timeout_s,
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        self.settings.server.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate(self.settings.database_url)
        for item in self.settings.whatsapp.senders:
            await self.senders.save(sender_from_settings(item))
        await self.media.start()
        watch = self.node_watch()
        try:
            async with asyncio.TaskGroup() as tasks:
                runners = [
                    tasks.create_task(self.control.run()),
                    tasks.create_task(self.calls_api.run()),
                    tasks.create_task(self.routing.run()),
                ]
                if self.sip is not None:
                    runners.append(tasks.create_task(self.sip.run()))
                await self.control.started()
                await watch.beat()
                await self.control.recover()
                runners.append(tasks.create_task(watch.run()))
                try:
                    yield
                finally:
                    with contextlib.suppress(Exception):
                        await self.control.shutdown()
                    for runner in runners:
                        runner.cancel()
        finally:
            await self.media.stop()
            await self.peers.aclose()
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
    components.forwarding(app)
    app.add_middleware(BodyLimitMiddleware, limits=components.body_limits())
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

    def __init__(self, settings: Settings, overrides: Overrides | None = None) -> None:
        self.settings = settings
        self.components = Components.build(settings, overrides)
        self.app = build_app(self.components)
        self._sock = bind_socket(settings.server.host, settings.server.port)
        self.port: int = self._sock.getsockname()[1]
        host = settings.server.host
        reachable = socket.getfqdn() if host in ("0.0.0.0", "::", "") else host
        self.components.bound_url = f"http://{reachable}:{self.port}"
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                lifespan="on",
                access_log=False,
                http=http_parser_name(settings.server.http_parser),
            )
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
