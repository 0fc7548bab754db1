"""Media-stream configurations (`/calls/1/media-stream-configs`): where a call's audio would be streamed
(a WebSocket endpoint, with its sample rate; or a media-streaming URL with its security). Stored and
validated; a call route's WEBSOCKET destination names one.

A MEDIA_STREAMING configuration's `securityConfig` is write-only: kept, never answered, and kept by an
update that does not send one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter
from pydantic import Field, StringConstraints
from sqlalchemy import func, select

from switchboard.apps.calls_api.context import Context, PageParam, SizeParam
from switchboard.apps.calls_api.schemas import Paging, Wire
from switchboard.httpapi.errors import ApiError
from switchboard.httpapi.urls import UnsafeUrl
from switchboard.store.calls_api import MediaStreamConfigRow

PATH = "/calls/1/media-stream-configs"
Name = Annotated[str, StringConstraints(max_length=128)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class BasicSecurity(Wire):
    type: Literal["BASIC"] = "BASIC"
    username: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    password: Secret


class HmacSecurity(Wire):
    type: Literal["HMAC"] = "HMAC"
    secret_key: Secret
    algorithm: Literal[
        "HMAC_MD5", "HMAC_SHA_1", "HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"
    ]


class WebsocketEndpointConfigRequest(Wire):
    type: Literal["WEBSOCKET_ENDPOINT"]
    name: Name
    url: Url
    sample_rate: Literal["8000", "16000", "24000", "32000"] = "8000"


class MediaStreamingConfigRequest(Wire):
    type: Literal["MEDIA_STREAMING"]
    name: Name
    url: Url
    security_config: Annotated[BasicSecurity | HmacSecurity, Field(discriminator="type")] | None = None


MediaStreamConfigRequest = Annotated[
    WebsocketEndpointConfigRequest | MediaStreamingConfigRequest, Field(discriminator="type")
]


class MediaStreamConfigResponse(Wire):
    id: str
    type: Literal["WEBSOCKET_ENDPOINT", "MEDIA_STREAMING"]
    name: str
    url: str
    sample_rate: str | None = None


class MediaStreamConfigPage(Wire):
    results: list[MediaStreamConfigResponse]
    paging: Paging


SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


async def checked_url(ctx: Context, url: str) -> None:
    """A ws(s) or http(s) URL to a permitted address; `ApiError` 400 naming `url` if not."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ApiError(400, f"url: {url!r} is not a ws(s) or http(s) URL")
    try:
        await ctx.urls.check_url(urlunsplit(parts._replace(scheme=SCHEMES[parts.scheme])), "url")
    except UnsafeUrl as exc:
        raise ApiError(400, str(exc).replace("http(s)", "ws(s) or http(s)")) from None


def _response(row: MediaStreamConfigRow) -> MediaStreamConfigResponse:
    return MediaStreamConfigResponse(
        id=row.id, type=row.type, name=row.name, url=row.url, sample_rate=row.sample_rate
    )


def _columns(body: WebsocketEndpointConfigRequest | MediaStreamingConfigRequest) -> dict[str, str | None]:
    security = body.security_config if isinstance(body, MediaStreamingConfigRequest) else None
    return {
        "type": body.type,
        "name": body.name,
        "url": body.url,
        "sample_rate": body.sample_rate if isinstance(body, WebsocketEndpointConfigRequest) else None,
        "security_config": security.model_dump_json(by_alias=True) if security else None,
    }


def build_router(ctx: Context) -> APIRouter:
    router = APIRouter(tags=["media streams"])

    @router.post(
        PATH, status_code=201, response_model=MediaStreamConfigResponse, response_model_exclude_none=True
    )
    async def create_media_stream_config(body: MediaStreamConfigRequest) -> MediaStreamConfigResponse:
        await checked_url(ctx, body.url)
        row = MediaStreamConfigRow(id=str(uuid.uuid4()), created_at=ctx.clock(), **_columns(body))
        async with ctx.db.session() as s:
            s.add(row)
        return _response(row)

    @router.get(PATH, response_model=MediaStreamConfigPage, response_model_exclude_none=True)
    async def list_media_stream_configs(page: PageParam = 0, size: SizeParam = 20) -> MediaStreamConfigPage:
        async with ctx.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(MediaStreamConfigRow)) or 0
            rows = await s.scalars(
                select(MediaStreamConfigRow)
                .order_by(MediaStreamConfigRow.created_at, MediaStreamConfigRow.id)
                .offset(page * size)
                .limit(size)
            )
            return MediaStreamConfigPage(
                results=[_response(r) for r in rows], paging=Paging.of(page, size, total)
            )

    @router.get(
        PATH + "/{mediaStreamConfigId}",
        response_model=MediaStreamConfigResponse,
        response_model_exclude_none=True,
    )
    async def get_media_stream_config(mediaStreamConfigId: str) -> MediaStreamConfigResponse:
        async with ctx.db.session() as s:
            row = await s.get(MediaStreamConfigRow, mediaStreamConfigId)
            if row is None:
                raise ApiError(404, f"media-stream configuration {mediaStreamConfigId!r} not found")
            return _response(row)

    @router.put(
        PATH + "/{mediaStreamConfigId}",
        response_model=MediaStreamConfigResponse,
        response_model_exclude_none=True,
    )
    async def update_media_stream_config(
        mediaStreamConfigId: str, body: MediaStreamConfigRequest
    ) -> MediaStreamConfigResponse:
        await checked_url(ctx, body.url)
        async with ctx.db.session() as s:
            row = await s.get(MediaStreamConfigRow, mediaStreamConfigId)
            if row is None:
                raise ApiError(404, f"media-stream configuration {mediaStreamConfigId!r} not found")
            kept = row.security_config
            for key, value in _columns(body).items():
                setattr(row, key, value)
            if row.type == "MEDIA_STREAMING" and row.security_config is None:
                row.security_config = kept  # write-only: a PUT without it keeps it
            return _response(row)

    @router.delete(
        PATH + "/{mediaStreamConfigId}",
        response_model=MediaStreamConfigResponse,
        response_model_exclude_none=True,
    )
    async def delete_media_stream_config(mediaStreamConfigId: str) -> MediaStreamConfigResponse:
        async with ctx.db.session() as s:
            row = await s.get(MediaStreamConfigRow, mediaStreamConfigId)
            if row is None:
                raise ApiError(404, f"media-stream configuration {mediaStreamConfigId!r} not found")
            await s.delete(row)
            return _response(row)

    return router
