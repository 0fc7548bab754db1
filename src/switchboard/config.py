"""One `Settings` object: a TOML file (optional) plus environment variables, validated with errors that
name the key (`whatsapp.senders[0].app_secret: field required`)."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from switchboard.runtime import (
    EventLoopName,
    HttpParserName,
    RuntimeUnavailable,
    event_loop_name,
    http_parser_name,
)

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com"
GRAPH_API_VERSION = "v23.0"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None
    """How Meta and apps reach this server (used in links and logs); defaults to http://host:port."""
    media_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    """Local IP addresses the media engine gathers ICE candidates on."""
    media_public_address: str | None = None
    """An address to advertise instead (1:1 NAT)."""
    media_remote_networks: list[str] | None = None
    """If set, only peer ICE candidates inside these networks (CIDR) are tried."""
    data_dir: Path = Path("switchboard-data")
    allow_private_urls: bool = False
    """Let notify, audio and Graph API URLs reach any address, private and loopback ones included."""
    allowed_url_networks: list[str] = Field(default_factory=list)
    """Networks (CIDR) those URLs may reach although they are not public, e.g. an internal app's."""
    no_media_timeout_s: float = Field(20.0, gt=0)
    node_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    """This server's name among several on one database (default: one made once and kept in data_dir)."""
    internal_url: str | None = None
    """How the other nodes on the database reach this one's HTTP API (to forward a call's requests to
    the node that carries it); default: http://host:port as bound (set it when host is a wildcard)."""
    heartbeat_interval_s: float = Field(2.0, gt=0, le=60)
    """How often this node tells the database it is alive."""
    node_timeout_s: float = Field(10.0, gt=0, le=3600)
    """A node silent for this long is taken for dead: a live node ends its calls. Keep it several
    heartbeat intervals long."""
    shutdown_grace_s: float = Field(5.0, ge=0, le=120)
    """At shutdown, how long to keep telling far ends that their calls ended (the next start goes on)."""
    event_loop: EventLoopName = "auto"
    """`auto`: uvloop when installed, else asyncio's loop; `SWITCHBOARD_EVENT_LOOP` overrides it."""
    http_parser: HttpParserName = "auto"
    """`auto`: httptools when installed, else h11."""

    @field_validator("event_loop")
    @classmethod
    def _event_loop(cls, value: EventLoopName) -> EventLoopName:
        try:
            event_loop_name(value)
        except RuntimeUnavailable as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("http_parser")
    @classmethod
    def _http_parser(cls, value: HttpParserName) -> HttpParserName:
        try:
            http_parser_name(value)
        except RuntimeUnavailable as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("internal_url")
    @classmethod
    def _internal_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. http://10.0.0.5:8080")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _timeouts(self) -> ServerSettings:
        if self.node_timeout_s < 2 * self.heartbeat_interval_s:
            raise ValueError("node_timeout_s must be at least twice heartbeat_interval_s")
        return self

    @field_validator("media_addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            ipaddress.ip_address(item)
        if not value:
            raise ValueError("at least one address is needed")
        return value

    @field_validator("allowed_url_networks")
    @classmethod
    def _url_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("media_remote_networks")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        import ipaddress

        for item in value or []:
            ipaddress.ip_network(item, strict=False)
        return value


class DatabaseSettings(_Strict):
    url: str | None = None
    """SQLAlchemy async URL; default: SQLite in the data directory. `DATABASE_URL` overrides it."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use a sqlite+aiosqlite:// or postgresql+asyncpg:// (postgresql://) URL")
        return value


ApiScope = Literal["admin", "application"]
"""`admin`: the senders admin API (`/admin/1/...`, with the senders' Meta tokens); `application`: every
other API route (calls, configurations, subscriptions, files, call permissions)."""
FULL_ACCESS: tuple[ApiScope, ...] = ("admin", "application")


class ApiKeySettings(_Strict):
    """One `[[api.key]]`: a key with the scopes it may use."""

    key: str = Field(min_length=16)
    scopes: list[ApiScope] = Field(min_length=1)


class ApiSettings(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    keys: list[str] = Field(default_factory=list)
    """Application keys: every API route but the senders admin API."""
    admin_keys: list[str] = Field(default_factory=list)
    """Operator keys: every route, the senders admin API (with the senders' Meta tokens) included."""
    scoped_keys: list[ApiKeySettings] = Field(default_factory=list, alias="key")
    """`[[api.key]]` tables: keys limited to their `scopes`."""
    max_upload_bytes: int = Field(50 * 1024 * 1024, gt=0)
    """The largest audio file upload (`POST /calls/1/files`), as the whole request body."""
    webhook_timeout_s: float = Field(5.0, gt=0)
    """How long one event delivery to a subscription's URL may take."""
    webhook_retry_base_delay_s: float = Field(1.0, gt=0)
    """The first retry of a failed delivery waits this long; each next one twice as long."""
    webhook_retry_max_delay_s: float = Field(300.0, gt=0)
    """Failed deliveries are retried with exponential backoff (1 s, 2 s, 4 s, ...) up to this delay."""
    webhook_give_up_after_s: float = Field(86400.0, gt=0)
    """An event not delivered for this long is marked failed and logged."""
    webhook_lease_s: float = Field(30.0, gt=0)
    """How long a node holds an event it is delivering; another node takes it over only after that
    (or once the node is found dead). Longer than `webhook_timeout_s`."""

    @field_validator("keys", "admin_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if len(key) < 16:
                raise ValueError("each API key must be at least 16 characters long")
        return value

    @model_validator(mode="after")
    def _lease(self) -> ApiSettings:
        if self.webhook_lease_s <= self.webhook_timeout_s:
            raise ValueError("webhook_lease_s must be longer than webhook_timeout_s")
        return self

    @model_validator(mode="after")
    def _distinct(self) -> ApiSettings:
        given = [*self.keys, *self.admin_keys, *(k.key for k in self.scoped_keys)]
        if len(set(given)) != len(given):
            raise ValueError("an API key is given twice (in keys, admin_keys or [[api.key]])")
        return self

    def all_keys(self) -> list[tuple[str, tuple[ApiScope, ...]]]:
        """Every key with its scopes."""
        application: tuple[ApiScope, ...] = ("application",)
        return (
            [(key, application) for key in self.keys]
            + [(key, FULL_ACCESS) for key in self.admin_keys]
            + [(item.key, tuple(item.scopes)) for item in self.scoped_keys]
        )


InboundActionName = Literal["SUBSCRIPTION", "CONTACT_CENTER", "IVR_SCENARIO", "FLOW", "CALL_ROUTING"]


INBOUND_ID_KEYS = {
    "SUBSCRIPTION": "calls_configuration_id",
    "CONTACT_CENTER": "queue_id",
    "IVR_SCENARIO": "scenario_id",
    "FLOW": "flow_id",
    "CALL_ROUTING": "route_id",
}
"""The key that names each inbound action's target; all but CALL_ROUTING's are required."""


class InboundSettings(_Strict):
    action: InboundActionName
    calls_configuration_id: str | None = None
    queue_id: str | None = None
    scenario_id: str | None = None
    flow_id: str | None = None
    route_id: str | None = None

    @model_validator(mode="after")
    def _target(self) -> InboundSettings:
        needed = INBOUND_ID_KEYS[self.action]
        if self.action != "CALL_ROUTING" and not getattr(self, needed):
            raise ValueError(f"action {self.action} needs {needed}")
        return self

    @property
    def target_id(self) -> str | None:
        value: str | None = getattr(self, INBOUND_ID_KEYS[self.action])
        return value


class SenderSettings(_Strict):
    phone_number_id: str = Field(min_length=1)
    display_phone_number: str = Field(min_length=1)
    waba_id: str = Field(min_length=1)
    access_token: str = Field(min_length=1)
    app_secret: str = Field(min_length=1)
    verify_token: str = Field(min_length=1)
    graph_api_url: str = DEFAULT_GRAPH_API_URL
    inbound: InboundSettings

    @field_validator("graph_api_url")
    @classmethod
    def _graph(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://graph.facebook.com")
        return value.rstrip("/")


class WhatsAppSettings(_Strict):
    senders: list[SenderSettings] = Field(default_factory=list)
    graph_api_version: str = GRAPH_API_VERSION
    graph_timeout_s: float = Field(10.0, gt=0)
    graph_retries: int = Field(3, ge=0, le=10)


class MediaSettings(_Strict):
    engine: Literal["embedded"] = "embedded"
    """Which media engine carries the calls' audio (the embedded, in-process one)."""
    max_prompt_seconds: float = Field(600.0, gt=0, le=86400)
    """The longest audio decoded for one play: a longer file plays its first `max_prompt_seconds` (and the
    log says so); this bounds the time and memory one play can take."""


_LISTEN = re.compile(r"^(udp|tcp|tls):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


class SipSettings(_Strict):
    """The SIP channel; without a `[sip]` section nothing listens for SIP."""

    listen: list[str] = Field(default_factory=lambda: ["udp:127.0.0.1:5060"], min_length=1)
    """`udp:HOST:PORT`, `tcp:HOST:PORT` or `tls:HOST:PORT` (TLS needs tls_certificate and tls_key)."""
    public_address: str | None = None
    """What Via, Contact and SDP advertise instead of the listening address (1:1 NAT)."""
    rtp_ports: tuple[int, int] = (20000, 29999)
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    connection_idle_s: float = Field(300.0, gt=0, le=86400)
    """A TCP/TLS connection that carries nothing this long and that no call or registration uses is closed."""
    message_timeout_s: float = Field(32.0, gt=0, le=3600)
    """A SIP message on TCP/TLS must be complete this long after its first byte (slow clients are cut off)."""
    max_connections: int = Field(1024, ge=1, le=1_000_000)
    """Accepted TCP/TLS connections per listener; one more is closed at once."""
    max_connection_buffer: int = Field(81_920, ge=1024, le=16_777_216)
    """Bytes a connection may hold for a message not yet complete."""
    digest_algorithms: tuple[Literal["MD5", "SHA-256"], ...] = Field(default=("MD5", "SHA-256"), min_length=1)
    """What REGISTERED trunks' 401 challenges offer, one WWW-Authenticate each, in this order. Some phones
    (baresip 1.x) refuse a 401 that offers an algorithm they do not know: `["MD5"]` serves them."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: list[str]) -> list[str]:
        for spec in value:
            match = _LISTEN.match(spec)
            if match is None or int(match.group(3)) > 65535:
                raise ValueError(f"{spec!r} is not udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT")
        if len(set(value)) != len(value):
            raise ValueError("listens on the same address twice")
        return value

    @field_validator("public_address")
    @classmethod
    def _public_address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _rtp_ports(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low < high <= 65535:
            raise ValueError("expected [low, high] with 1024 <= low < high <= 65535")
        return value

    @field_validator("tls_certificate", "tls_key")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _tls(self) -> SipSettings:
        wants_tls = any(spec.startswith("tls:") for spec in self.listen)
        if wants_tls and (self.tls_certificate is None or self.tls_key is None):
            raise ValueError("tls_certificate and tls_key are required by a tls: listener")
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("tls_certificate and tls_key go together")
        return self


class RoutingSettings(_Strict):
    time_zone: str = "UTC"
    """The IANA time zone in which call routes' `allowedTimeWindows` are read (e.g. "Europe/Berlin")."""

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
        return value


class Settings(_Strict):
    server: ServerSettings = ServerSettings()
    media: MediaSettings = MediaSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()
    sip: SipSettings | None = None
    routing: RoutingSettings = RoutingSettings()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.server.data_dir / 'switchboard.db').resolve()}"

    @property
    def public_url(self) -> str:
        return self.server.public_url or f"http://{self.server.host}:{self.server.port}"


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ""
        for part in err["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    path: Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Read `path` (TOML), apply environment variables and `overrides` ({"server": {"port": 1}})."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    if env.get("DATABASE_URL"):
        data.setdefault("database", {})["url"] = env["DATABASE_URL"]
    if env.get("SWITCHBOARD_EVENT_LOOP"):
        data.setdefault("server", {})["event_loop"] = env["SWITCHBOARD_EVENT_LOOP"]
    for variable, key in (("SWITCHBOARD_API_KEYS", "keys"), ("SWITCHBOARD_ADMIN_KEYS", "admin_keys")):
        if env.get(variable):
            data.setdefault("api", {})[key] = [k.strip() for k in env[variable].split(",") if k.strip()]
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
