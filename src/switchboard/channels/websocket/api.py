"""Infobip's media-stream configuration API (`/calls/1/media-stream-configs`).

Create answers 201, the rest 200, as the official SDK expects. URLs must be ws:// or wss:// and pass the
outgoing URL policy. Custom header values are answered masked; a masked value sent back (PUT) keeps the
stored one. Security secrets are never answered; a PUT without `securityConfig` keeps the stored one.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from switchboard.channels.websocket.configs import (
    DEFAULT_SAMPLE_RATE,
    SAMPLE_RATES,
    MediaStreamConfig,
    MediaStreamConfigs,
    MediaStreamType,
    SecurityType,
    StreamSecurity,
    new_config_id,
)
from switchboard.errors import SwitchboardError
from switchboard.httpapi.paging import PageParam, SizeParam, paged
from switchboard.httpapi.urls import WEBSOCKET_SCHEMES, UnsafeUrl, UrlPolicy

TAGS: list[str | Enum] = ["media streams"]
MASK = "********"
MAX_HEADERS = 20
MAX_HEADER_VALUE = 1024
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
RESERVED_HEADERS = frozenset(
    {"host", "connection", "upgrade", "content-length", "transfer-encoding", "authorization"}
)
"""Headers the WebSocket handshake sets itself (and `Sec-WebSocket-*`); BASIC/HMAC carry authorization."""
HmacAlgorithm = Literal[
    "HMAC_MD5", "HMAC_SHA_1", "HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"
]


class ConfigInvalid(SwitchboardError):
    status_hint = 400


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SecurityBody(Wire):
    type: Literal["BASIC", "HMAC"]
    username: StrictStr | None = None
    password: StrictStr | None = None
    secret_key: StrictStr | None = None
    algorithm: HmacAlgorithm | None = None


class ConfigBody(Wire):
    type: Literal["WEBSOCKET_ENDPOINT", "MEDIA_STREAMING"]
    name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    url: Annotated[StrictStr, Field(min_length=1, max_length=2048)]
    sample_rate: StrictStr | StrictInt | None = None
    custom_headers: dict[str, StrictStr] | None = None
    security_config: SecurityBody | None = None


def _sample_rate(value: str | int | None) -> int:
    allowed = ", ".join(f'"{r}"' for r in SAMPLE_RATES)
    if value is None:
        return DEFAULT_SAMPLE_RATE
    text = str(value)
    if text not in {str(rate) for rate in SAMPLE_RATES}:
        raise ConfigInvalid(f"sampleRate: {value!r} is not one of {allowed}")
    return int(text)


def _headers(given: dict[str, str], stored: dict[str, str]) -> dict[str, str]:
    if len(given) > MAX_HEADERS:
        raise ConfigInvalid(f"customHeaders: at most {MAX_HEADERS} headers")
    headers: dict[str, str] = {}
    for name, value in given.items():
        lower = name.lower()
        if not _TOKEN.match(name):
            raise ConfigInvalid(f"customHeaders: {name!r} is not a header name")
        if lower in RESERVED_HEADERS or lower.startswith("sec-websocket-"):
            raise ConfigInvalid(f"customHeaders.{name}: set by the WebSocket handshake itself")
        if value == MASK and name in stored:
            value = stored[name]
        if any(c in value for c in "\r\n\0") or len(value) > MAX_HEADER_VALUE:
            raise ConfigInvalid(
                f"customHeaders.{name}: at most {MAX_HEADER_VALUE} characters, no line breaks"
            )
        headers[name] = value
    return headers


def _security(body: SecurityBody) -> StreamSecurity:
    if body.type == "BASIC":
        if not body.username or not body.password:
            raise ConfigInvalid("securityConfig: BASIC needs username and password")
        return StreamSecurity(SecurityType.BASIC, username=body.username, password=body.password)
    if not body.secret_key or not body.algorithm:
        raise ConfigInvalid("securityConfig: HMAC needs secretKey and algorithm")
    return StreamSecurity(SecurityType.HMAC, secret_key=body.secret_key, algorithm=body.algorithm)


def config_from_body(config_id: str, body: ConfigBody, stored: MediaStreamConfig | None) -> MediaStreamConfig:
    kind = MediaStreamType(body.type)
    if kind is MediaStreamType.WEBSOCKET_ENDPOINT:
        if body.security_config is not None:
            raise ConfigInvalid("securityConfig: not a field of WEBSOCKET_ENDPOINT (use customHeaders)")
        stored_headers = dict(stored.custom_headers) if stored is not None else {}
        return MediaStreamConfig(
            id=config_id,
            type=kind,
            name=body.name,
            url=body.url,
            sample_rate=_sample_rate(body.sample_rate),
            custom_headers=_headers(body.custom_headers or {}, stored_headers),
        )
    for name, value in (("sampleRate", body.sample_rate), ("customHeaders", body.custom_headers)):
        if value is not None:
            raise ConfigInvalid(f"{name}: not a field of MEDIA_STREAMING")
    security: StreamSecurity | None
    if body.security_config is not None:
        security = _security(body.security_config)
    else:
        security = stored.security if stored is not None and stored.type is kind else None
    return MediaStreamConfig(id=config_id, type=kind, name=body.name, url=body.url, security=security)


def config_json(config: MediaStreamConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"id": config.id, "type": config.type.value, "name": config.name, "url": config.url}
    if config.type is MediaStreamType.WEBSOCKET_ENDPOINT:
        out["sampleRate"] = str(config.sample_rate)
        if config.custom_headers:
            out["customHeaders"] = dict.fromkeys(config.custom_headers, MASK)
    elif config.security is not None:
        out["securityConfig"] = {"type": config.security.type.value}
    return out


def build_router(configs: MediaStreamConfigs, *, urls: UrlPolicy) -> APIRouter:
    router = APIRouter()

    async def checked(
        config_id: str, body: ConfigBody, stored: MediaStreamConfig | None
    ) -> MediaStreamConfig:
        config = config_from_body(config_id, body, stored)
        try:
            await urls.check_url(body.url, "url", WEBSOCKET_SCHEMES)
        except UnsafeUrl as exc:
            raise ConfigInvalid(str(exc)) from None
        return config

    @router.post(
        "/calls/1/media-stream-configs",
        status_code=201,
        tags=TAGS,
        summary="Create a media-stream configuration",
    )
    async def create_media_stream_config(body: ConfigBody) -> dict[str, Any]:
        config = await checked(new_config_id(), body, None)
        await configs.save(config)
        return config_json(config)

    @router.get("/calls/1/media-stream-configs", tags=TAGS, summary="List media-stream configurations")
    async def get_media_stream_configs(page: PageParam = 0, size: SizeParam = 20) -> dict[str, Any]:
        return paged([config_json(c) for c in await configs.list()], page, size)

    @router.get(
        "/calls/1/media-stream-configs/{mediaStreamConfigId}",
        tags=TAGS,
        summary="Get a media-stream configuration",
    )
    async def get_media_stream_config(mediaStreamConfigId: str) -> dict[str, Any]:
        return config_json(await configs.require(mediaStreamConfigId))

    @router.put(
        "/calls/1/media-stream-configs/{mediaStreamConfigId}",
        tags=TAGS,
        summary="Update a media-stream configuration",
    )
    async def update_media_stream_config(mediaStreamConfigId: str, body: ConfigBody) -> dict[str, Any]:
        stored = await configs.require(mediaStreamConfigId)
        config = await checked(stored.id, body, stored)
        await configs.save(config)
        return config_json(config)

    @router.delete(
        "/calls/1/media-stream-configs/{mediaStreamConfigId}",
        tags=TAGS,
        summary="Delete a media-stream configuration",
    )
    async def delete_media_stream_config(mediaStreamConfigId: str) -> dict[str, Any]:
        return config_json(await configs.delete(mediaStreamConfigId))

    return router
