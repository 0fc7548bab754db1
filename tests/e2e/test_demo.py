"""The demo's sample app against a real server: its set-up can run on every start of the demo."""

from __future__ import annotations

from typing import Any

import pytest

from support.platform import API_KEY, Platform
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
