"""`switchboard demo` as a newcomer meets it: the printed URLs open in a browser, and the sample app's
set-up can run on every start against the kept data directory."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cli import Running, started_cli
from support.platform import API_KEY, Platform, free_port
from switchboard.demo.app import SampleApp

pytestmark = pytest.mark.e2e

CONFIGURATION_ID = "sample-app"
SUBSCRIPTION_NAME = "sample app events"
SUBSCRIPTIONS = "/subscriptions/1/subscription/VOICE_VIDEO"


async def _subscriptions_for(platform: Platform, configuration_id: str) -> list[dict[str, Any]]:
    response = await platform.api.get(SUBSCRIPTIONS, params={"size": 1000})
    return [
        s
        for s in response.json()["results"]
        if any(c["callsConfigurationId"] == configuration_id for c in s["criteria"])
    ]


async def _configuration_ids(platform: Platform) -> list[str]:
    response = await platform.api.get("/calls/1/configurations", params={"size": 1000})
    return [c["id"] for c in response.json()["results"]]


async def test_setting_up_twice_keeps_one_configuration_and_one_subscription(platform: Platform) -> None:
    sample = SampleApp(platform.server.url, API_KEY)
    try:
        await sample.setup("http://127.0.0.1:8082/events", CONFIGURATION_ID)
        await sample.setup("http://127.0.0.1:9092/events", CONFIGURATION_ID)
    finally:
        await sample.http.aclose()

    assert (await _configuration_ids(platform)).count(CONFIGURATION_ID) == 1
    (subscription,) = await _subscriptions_for(platform, CONFIGURATION_ID)
    assert subscription["profile"]["webhook"]["notifyUrl"] == "http://127.0.0.1:9092/events"


async def test_set_up_removes_duplicates_an_earlier_start_left(platform: Platform) -> None:
    await platform.api.post("/calls/1/configurations", json={"id": CONFIGURATION_ID, "name": "Sample app"})
    duplicate = {
        "name": SUBSCRIPTION_NAME,
        "events": ["CALL_RECEIVED"],
        "criteria": [{"callsConfigurationId": CONFIGURATION_ID}],
        "profile": {"webhook": {"notifyUrl": "http://127.0.0.1:8082/events"}},
    }
    for _ in range(2):
        assert (await platform.api.post(SUBSCRIPTIONS, json=duplicate)).status_code == 201
    someone_elses = {**duplicate, "name": "my own listener"}
    assert (await platform.api.post(SUBSCRIPTIONS, json=someone_elses)).status_code == 201

    sample = SampleApp(platform.server.url, API_KEY)
    try:
        await sample.setup("http://127.0.0.1:8082/events", CONFIGURATION_ID)
    finally:
        await sample.http.aclose()

    names = sorted(s["name"] for s in await _subscriptions_for(platform, CONFIGURATION_ID))
    assert names == ["my own listener", SUBSCRIPTION_NAME]


def _printed_urls(lines: list[str]) -> set[str]:
    return {url.rstrip("/") for line in lines for url in re.findall(r"https?://[^\s,()]+", line)}


def _api(lines: list[str]) -> tuple[str, str]:
    (line,) = [line for line in lines if "API key:" in line]
    match = re.search(r"(http://\S+)\s.*API key: ([^\s)]+)", line)
    assert match is not None, line
    return match.group(1), match.group(2)


def _start_demo(tmp_path: Path, ports: list[int]) -> AbstractContextManager[Running]:
    args = ["--port", str(ports[0]), "--emulator-port", str(ports[1]), "--app-port", str(ports[2])]
    return started_cli("demo", *args, "--data-dir", str(tmp_path / "data"), cwd=tmp_path)


def test_every_url_the_demo_prints_answers_a_browser_with_a_page(tmp_path: Path) -> None:
    with _start_demo(tmp_path, [free_port(), free_port(), free_port()]) as demo:
        demo.wait_for_line("Press Ctrl+C to stop.", timeout=30)
        urls = _printed_urls(demo.lines)
        assert len(urls) >= 5, demo.lines
        for url in sorted(urls):
            response = httpx.get(url, follow_redirects=True, timeout=10)
            assert response.status_code == 200, f"GET {url} -> {response.status_code}"
            assert response.headers["content-type"].startswith("text/html"), url
        assert demo.interrupt() == 0


def test_a_restarted_demo_keeps_one_subscription_for_the_sample_app(tmp_path: Path) -> None:
    ports = [free_port(), free_port(), free_port()]
    for _ in range(2):
        with _start_demo(tmp_path, ports) as demo:
            demo.wait_for_line("Press Ctrl+C to stop.", timeout=30)
            server_url, api_key = _api(demo.lines)
            response = httpx.get(
                server_url + SUBSCRIPTIONS, headers={"Authorization": f"App {api_key}"}, timeout=10
            )
            assert demo.interrupt() == 0
    names = [s["name"] for s in response.json()["results"]]
    assert names == [SUBSCRIPTION_NAME]
