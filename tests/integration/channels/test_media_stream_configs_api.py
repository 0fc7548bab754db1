"""Media-stream configurations as raw JSON against a running server: WebSocket URLs pass the outgoing
URL policy, bad input gets a 400 naming the field, header values and secrets are never answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.calls_api_harness import Harness, running_harness
from support.network import RecordingNetwork, ScriptedResolver

CONFIGS = "/calls/1/media-stream-configs"


def endpoint(**fields: Any) -> dict[str, Any]:
    return {"type": "WEBSOCKET_ENDPOINT", "name": "bot", "url": "wss://127.0.0.1:9443/audio"} | fields


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, create_config=False) as h:
        yield h


def refusal(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["requestError"]["serviceException"]["text"])


BAD: list[tuple[dict[str, Any], str]] = [
    (endpoint(url="https://127.0.0.1/audio"), "url: 'https://127.0.0.1/audio' is not a ws(s) URL"),
    (endpoint(url="ws://"), "url: 'ws://' is not a ws(s) URL"),
    (endpoint(url="ws://127.0.0.1:99999/"), "url: "),
    (endpoint(sampleRate="44100"), "sampleRate: '44100' is not one of"),
    (endpoint(sampleRate="\uff18\uff10\uff10\uff10"), "sampleRate: "),  # full-width digits
    (endpoint(sampleRate=8000.5), "sampleRate."),
    (endpoint(type="SIPREC"), "type: "),
    (endpoint(name=""), "name: "),
    (endpoint(customHeaders={"Sec-WebSocket-Key": "x"}), "customHeaders.Sec-WebSocket-Key: set by"),
    (endpoint(customHeaders={"Host": "x"}), "customHeaders.Host: set by"),
    (endpoint(customHeaders={"X-Token": "a\r\nInjected: 1"}), "customHeaders.X-Token: "),
    (endpoint(customHeaders={"Bad Name": "x"}), "customHeaders: 'Bad Name' is not a header name"),
    (endpoint(customHeaders={"X-N": 1}), "customHeaders.X-N: "),
    (endpoint(securityConfig={"type": "BASIC", "username": "u", "password": "p"}), "securityConfig: not a"),
    (endpoint(type="MEDIA_STREAMING", sampleRate="8000"), "sampleRate: not a field of MEDIA_STREAMING"),
    (
        endpoint(type="MEDIA_STREAMING", securityConfig={"type": "BASIC", "username": "u"}),
        "securityConfig: BASIC needs username and password",
    ),
    (
        endpoint(type="MEDIA_STREAMING", securityConfig={"type": "HMAC", "secretKey": "k", "algorithm": "X"}),
        "securityConfig.algorithm: ",
    ),
]


@pytest.mark.parametrize(("body", "named"), BAD)
async def test_bad_configs_are_refused_naming_the_field(
    harness: Harness, body: dict[str, Any], named: str
) -> None:
    text = refusal(await harness.client.post(CONFIGS, json=body))
    assert text.startswith(named), text
    assert (await harness.client.get(CONFIGS)).json()["paging"]["totalResults"] == 0


async def test_private_addresses_are_refused_unless_allowed(tmp_path: Path) -> None:
    resolver = ScriptedResolver({"bot.example": [["10.1.2.3"]], "public.example": [["93.184.216.34"]]})
    network = (resolver, RecordingNetwork())
    async with running_harness(tmp_path, create_config=False, allow_private_urls=False, network=network) as h:
        for url in ("ws://127.0.0.1:9000/", "wss://bot.example/audio", "ws://nowhere.example/"):
            text = refusal(await h.client.post(CONFIGS, json=endpoint(url=url)))
            assert text.startswith("url: "), text
        created = await h.client.post(CONFIGS, json=endpoint(url="wss://public.example/audio"))
        assert created.status_code == 201, created.text
        config_id = created.json()["id"]
        text = refusal(await h.client.put(f"{CONFIGS}/{config_id}", json=endpoint(url="ws://10.0.0.1/")))
        assert text.startswith("url: ")


async def test_header_values_are_masked_and_kept_when_sent_back_masked(harness: Harness) -> None:
    client = harness.client
    created = await client.post(
        CONFIGS, json=endpoint(sampleRate=16000, customHeaders={"X-Token": "s3cret", "X-Bot": "one"})
    )
    assert created.status_code == 201, created.text
    config = created.json()
    assert config["sampleRate"] == "16000"
    assert config["customHeaders"] == {"X-Token": "********", "X-Bot": "********"}
    assert "s3cret" not in created.text

    headers = {"X-Token": "********", "X-Bot": "two"}
    updated = await client.put(f"{CONFIGS}/{config['id']}", json=endpoint(customHeaders=headers))
    assert updated.status_code == 200, updated.text
    assert updated.json()["sampleRate"] == "8000"
    stored = await harness.server.components.media_stream_configs.require(config["id"])
    assert dict(stored.custom_headers) == {"X-Token": "s3cret", "X-Bot": "two"}


async def test_security_secrets_are_kept_but_never_answered(harness: Harness) -> None:
    client = harness.client
    security = {"type": "BASIC", "username": "bot", "password": "pa55word"}
    body = endpoint(type="MEDIA_STREAMING", securityConfig=security)
    created = await client.post(CONFIGS, json=body)
    assert created.status_code == 201, created.text
    config_id = created.json()["id"]
    assert "pa55word" not in created.text and created.json()["securityConfig"] == {"type": "BASIC"}
    renamed = await client.put(f"{CONFIGS}/{config_id}", json=endpoint(type="MEDIA_STREAMING", name="n"))
    assert renamed.status_code == 200 and "pa55word" not in renamed.text
    stored = await harness.server.components.media_stream_configs.require(config_id)
    assert stored.security is not None and stored.security.password == "pa55word"


async def test_unknown_configs_are_404(harness: Harness) -> None:
    client = harness.client
    for response in (
        await client.get(f"{CONFIGS}/nope"),
        await client.put(f"{CONFIGS}/nope", json=endpoint()),
        await client.delete(f"{CONFIGS}/nope"),
    ):
        assert "mediaStreamConfigId: media-stream configuration 'nope' not found" in refusal(response, 404)
