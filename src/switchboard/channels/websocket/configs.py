"""Media-stream configurations (Infobip's `/calls/1/media-stream-configs`): where a call's audio is
streamed to, kept as channel records (kind `websocket.media_stream_config`).

WEBSOCKET_ENDPOINT streams raw audio at `sample_rate` to `url` with `custom_headers` on the upgrade
request; MEDIA_STREAMING is Infobip's older form, authenticated by `security` (BASIC or HMAC). Header
values and security secrets are write-only: the API never answers them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchboard.core.errors import NotFound
from switchboard.core.ports import ChannelRecords

CONFIG_KIND = "websocket.media_stream_config"
SAMPLE_RATES = (8000, 16000, 24000, 32000)
"""The rates the official SDK allows (`sampleRate`, a string on the wire)."""
DEFAULT_SAMPLE_RATE = 8000


class MediaStreamConfigNotFound(NotFound):
    def __init__(self, config_id: str) -> None:
        super().__init__(f"mediaStreamConfigId: media-stream configuration {config_id!r} not found")


class MediaStreamType(enum.StrEnum):
    WEBSOCKET_ENDPOINT = "WEBSOCKET_ENDPOINT"
    MEDIA_STREAMING = "MEDIA_STREAMING"


class SecurityType(enum.StrEnum):
    BASIC = "BASIC"
    HMAC = "HMAC"


@dataclass(frozen=True, slots=True)
class StreamSecurity:
    """How a MEDIA_STREAMING endpoint authenticates us: BASIC (`username`, `password`) or HMAC
    (`secret_key` with `algorithm`)."""

    type: SecurityType
    username: str | None = None
    password: str | None = None
    secret_key: str | None = None
    algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class MediaStreamConfig:
    id: str
    type: MediaStreamType
    name: str
    url: str
    sample_rate: int = DEFAULT_SAMPLE_RATE
    custom_headers: Mapping[str, str] = field(default_factory=dict)
    security: StreamSecurity | None = None


def new_config_id() -> str:
    return str(uuid.uuid4())


def config_to_data(config: MediaStreamConfig) -> dict[str, Any]:
    security = config.security
    return {
        "id": config.id,
        "type": config.type.value,
        "name": config.name,
        "url": config.url,
        "sample_rate": config.sample_rate,
        "custom_headers": dict(config.custom_headers),
        "security": None
        if security is None
        else {
            "type": security.type.value,
            "username": security.username,
            "password": security.password,
            "secret_key": security.secret_key,
            "algorithm": security.algorithm,
        },
    }


def config_from_data(data: Mapping[str, Any]) -> MediaStreamConfig:
    security = data.get("security")
    return MediaStreamConfig(
        id=data["id"],
        type=MediaStreamType(data["type"]),
        name=data["name"],
        url=data["url"],
        sample_rate=data["sample_rate"],
        custom_headers=dict(data["custom_headers"]),
        security=None
        if security is None
        else StreamSecurity(
            type=SecurityType(security["type"]),
            username=security.get("username"),
            password=security.get("password"),
            secret_key=security.get("secret_key"),
            algorithm=security.get("algorithm"),
        ),
    )


class MediaStreamConfigs:
    def __init__(self, records: ChannelRecords) -> None:
        self._records = records

    async def list(self) -> Sequence[MediaStreamConfig]:
        """Every configuration, oldest first."""
        return [config_from_data(r.data) for r in await self._records.list(CONFIG_KIND)]

    async def get(self, config_id: str) -> MediaStreamConfig | None:
        record = await self._records.get(CONFIG_KIND, config_id)
        return config_from_data(record.data) if record is not None else None

    async def require(self, config_id: str) -> MediaStreamConfig:
        config = await self.get(config_id)
        if config is None:
            raise MediaStreamConfigNotFound(config_id)
        return config

    async def save(self, config: MediaStreamConfig) -> None:
        await self._records.save(CONFIG_KIND, config.id, config_to_data(config))

    async def delete(self, config_id: str) -> MediaStreamConfig:
        config = await self.require(config_id)
        await self._records.delete(CONFIG_KIND, config_id)
        return config
