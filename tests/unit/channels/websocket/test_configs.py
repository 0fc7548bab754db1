"""Media-stream configurations: records round-trip, bodies become configurations, secrets stay out of
answers."""

from __future__ import annotations

import pytest

from support.fakes import InMemoryChannelRecords
from switchboard.channels.websocket.api import MASK, ConfigBody, ConfigInvalid, config_from_body, config_json
from switchboard.channels.websocket.configs import (
    MediaStreamConfig,
    MediaStreamConfigNotFound,
    MediaStreamConfigs,
    MediaStreamType,
    SecurityType,
    StreamSecurity,
    config_from_data,
    config_to_data,
)


def body(**fields: object) -> ConfigBody:
    return ConfigBody.model_validate(
        {"type": "WEBSOCKET_ENDPOINT", "name": "bot", "url": "wss://b/a"} | fields
    )


def test_records_round_trip() -> None:
    configs = [
        MediaStreamConfig("1", MediaStreamType.WEBSOCKET_ENDPOINT, "bot", "wss://b/a", 16000, {"X-A": "1"}),
        MediaStreamConfig(
            "2",
            MediaStreamType.MEDIA_STREAMING,
            "rec",
            "wss://r/",
            security=StreamSecurity(SecurityType.HMAC, secret_key="k", algorithm="HMAC_SHA_256"),
        ),
    ]
    for config in configs:
        assert config_from_data(config_to_data(config)) == config


def test_sample_rate_is_a_string_on_the_wire_and_defaults_to_8000() -> None:
    assert config_json(config_from_body("1", body(), None))["sampleRate"] == "8000"
    assert config_from_body("1", body(sampleRate="24000"), None).sample_rate == 24000
    assert config_from_body("1", body(sampleRate=32000), None).sample_rate == 32000
    with pytest.raises(ConfigInvalid, match="sampleRate: '11025' is not one of"):
        config_from_body("1", body(sampleRate="11025"), None)


def test_masked_header_values_keep_the_stored_ones() -> None:
    stored = config_from_body("1", body(customHeaders={"X-Key": "secret"}), None)
    assert config_json(stored)["customHeaders"] == {"X-Key": MASK}
    again = config_from_body("1", body(customHeaders={"X-Key": MASK, "X-New": MASK}), stored)
    assert dict(again.custom_headers) == {"X-Key": "secret", "X-New": MASK}


def test_media_streaming_keeps_its_security_when_a_put_leaves_it_out() -> None:
    security = {"type": "BASIC", "username": "u", "password": "p"}
    stored = config_from_body("1", body(type="MEDIA_STREAMING", securityConfig=security), None)
    assert stored.security == StreamSecurity(SecurityType.BASIC, username="u", password="p")
    assert config_json(stored) == {
        "id": "1",
        "type": "MEDIA_STREAMING",
        "name": "bot",
        "url": "wss://b/a",
        "securityConfig": {"type": "BASIC"},
    }
    assert config_from_body("1", body(type="MEDIA_STREAMING"), stored).security == stored.security
    assert config_from_body("1", body(type="MEDIA_STREAMING"), None).security is None


async def test_the_directory_stores_and_deletes() -> None:
    configs = MediaStreamConfigs(InMemoryChannelRecords())
    config = config_from_body("1", body(), None)
    await configs.save(config)
    assert await configs.list() == [config]
    assert await configs.delete("1") == config
    assert await configs.get("1") is None
    with pytest.raises(MediaStreamConfigNotFound):
        await configs.require("1")
