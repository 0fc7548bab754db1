"""Media-stream configurations through Infobip's own SDK against a running server: created (201),
read, listed, updated and deleted through the SDK's models; a MEDIA_STREAMING configuration's security is
write-only; bad URLs and sample rates are refused naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.calls_api import CallsApi as SdkCallsApi
from infobip_api_client.exceptions import ApiException
from infobip_api_client.models.calls_websocket_endpoint_config_request import (
    CallsWebsocketEndpointConfigRequest,
)

from support.calls_api_harness import API_KEY, running_harness

T = TypeVar("T")
PATH = "/calls/1/media-stream-configs"


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_media_stream_configs_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = SdkCallsApi(ApiClient(Configuration(host=h.base_url, api_key=API_KEY)))
        request = CallsWebsocketEndpointConfigRequest(
            name="bot", url="wss://127.0.0.1:9443/audio", sampleRate="16000"
        )
        created = await run(api.create_media_stream_config, request)
        assert created.id and created.name == "bot" and created.sample_rate == "16000"
        assert created.type is not None and created.type.value == "WEBSOCKET_ENDPOINT"
        fetched = await run(api.get_media_stream_config, created.id)
        assert fetched.url == "wss://127.0.0.1:9443/audio"
        page = await run(api.get_media_stream_configs, page=0, size=5)
        assert [c.id for c in page.results or []] == [created.id]
        assert page.paging is not None and page.paging.total_results == 1
        request.name = "bot, renamed"
        updated = await run(api.update_media_stream_config, created.id, request)
        assert updated.name == "bot, renamed"
        deleted = await run(api.delete_media_stream_config, created.id)
        assert deleted.id == created.id
        with pytest.raises(ApiException) as gone:
            await run(api.get_media_stream_config, created.id)
        assert gone.value.status == 404


async def test_media_streaming_security_is_write_only_and_bad_input_is_named(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        body = {
            "type": "MEDIA_STREAMING",
            "name": "recorder",
            "url": "https://127.0.0.1:9443/stream",
            "securityConfig": {"type": "BASIC", "username": "u", "password": "p4ss"},
        }
        created = await h.client.post(PATH, json=body)
        assert created.status_code == 201, created.text
        assert "securityConfig" not in created.json() and "p4ss" not in created.text
        for bad, field in (
            ({**body, "url": "ftp://example.test/x"}, "url"),
            (
                {"type": "WEBSOCKET_ENDPOINT", "name": "b", "url": "ws://127.0.0.1/x", "sampleRate": "44100"},
                "sampleRate",
            ),
            ({"type": "WEBSOCKET_ENDPOINT", "name": "n" * 129, "url": "ws://127.0.0.1/x"}, "name"),
            ({"type": "FAX", "name": "b", "url": "ws://127.0.0.1/x"}, "type"),
        ):
            response = await h.client.post(PATH, json=bad)
            assert response.status_code == 400, response.text
            assert field in response.json()["requestError"]["serviceException"]["text"]
