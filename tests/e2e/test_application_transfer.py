"""Application transfer through Infobip's official SDK: a call answered by one calls configuration's app is
handed to another's. A rejected and a timed-out transfer leave the call with the first app; an accepted
one lets the second app drive it (the WhatsApp user hears its audio) and the record keeps the chain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.calls_api import CallsApi as SdkCallsApi
from infobip_api_client.models.calls_answer_request import CallsAnswerRequest
from infobip_api_client.models.calls_application_transfer_request import CallsApplicationTransferRequest
from infobip_api_client.models.calls_file_play_content import CallsFilePlayContent
from infobip_api_client.models.calls_hangup_request import CallsHangupRequest
from infobip_api_client.models.calls_play_request import CallsPlayRequest

from support.audio import tone_wav, tone_windows
from support.platform import API_KEY, CONFIGURATION_ID, PHONE_NUMBER_ID, Platform, WebhookApp, free_port

pytestmark = pytest.mark.e2e
T = TypeVar("T")
SECOND_APP = "e2e-second-app"
TRANSFER_EVENTS = [
    "CALL_RECEIVED",
    "CALL_ESTABLISHED",
    "CALL_FINISHED",
    "PLAY_FINISHED",
    "APPLICATION_TRANSFER_REQUESTED",
    "APPLICATION_TRANSFER_FINISHED",
    "APPLICATION_TRANSFER_FAILED",
]


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def second_app(platform: Platform) -> WebhookApp:
    app = WebhookApp(free_port())
    await app.start()
    await platform.api.post("/calls/1/configurations", json={"id": SECOND_APP, "name": "second"})
    response = await platform.api.post(
        "/subscriptions/1/subscription/VOICE_VIDEO",
        json={
            "name": "second app",
            "events": TRANSFER_EVENTS,
            "criteria": [{"callsConfigurationId": SECOND_APP}],
            "profile": {"webhook": {"notifyUrl": app.url}},
        },
    )
    assert response.status_code in (200, 201), response.text
    return app


def transfer_request(timeout: int) -> CallsApplicationTransferRequest:
    return CallsApplicationTransferRequest(destinationCallsConfigurationId=SECOND_APP, timeout=timeout)


async def test_transfer_rejected_timed_out_then_accepted(platform: Platform, tmp_path: Path) -> None:
    await platform.subscribe(TRANSFER_EVENTS)
    second = await second_app(platform)
    first = platform.app
    api = SdkCallsApi(ApiClient(Configuration(host=platform.server.url, api_key=API_KEY)))
    tone = tmp_path / "tone.wav"
    tone.write_bytes(tone_wav(750, 2.0))
    uploaded = await run(api.upload_calls_audio_file, str(tone))
    try:
        call = await platform.emulator.user("15550003333", name="Cy").call(PHONE_NUMBER_ID)
        call_id = (await first.wait_for("CALL_RECEIVED"))["callId"]
        await run(api.answer_call, call_id, CallsAnswerRequest())
        await first.wait_for("CALL_ESTABLISHED", call_id)
        await call.wait_connected()

        # 1. The second app rejects: the call stays with the first.
        await run(api.application_transfer, call_id, transfer_request(30))
        requested = await second.wait_for("APPLICATION_TRANSFER_REQUESTED", call_id)
        props = requested["properties"]
        assert props["sourceCallsConfigurationId"] == CONFIGURATION_ID
        assert props["call"]["id"] == call_id
        await run(api.application_transfer_reject, call_id, props["transferId"])
        failed = await first.wait_for("APPLICATION_TRANSFER_FAILED", call_id)
        assert failed["properties"]["transferId"] == props["transferId"]
        assert (await run(api.get_call, call_id)).calls_configuration_id == CONFIGURATION_ID

        # 2. The second app does not answer in time: the call stays with the first.
        await run(api.application_transfer, call_id, transfer_request(1))
        second.events.clear()
        first.events.clear()
        timed_out = await first.wait_for("APPLICATION_TRANSFER_FAILED", call_id, timeout=10)
        assert "in time" in timed_out["properties"]["reason"]
        assert (await run(api.get_call, call_id)).calls_configuration_id == CONFIGURATION_ID

        # 3. Accepted: the second app has the call and drives it.
        await run(api.application_transfer, call_id, transfer_request(30))
        requested = await second.wait_for("APPLICATION_TRANSFER_REQUESTED", call_id)
        await run(api.application_transfer_accept, call_id, requested["properties"]["transferId"])
        finished = await second.wait_for("APPLICATION_TRANSFER_FINISHED", call_id)
        assert finished["properties"]["destinationCallsConfigurationId"] == SECOND_APP
        await first.wait_for("APPLICATION_TRANSFER_FINISHED", call_id)
        assert (await run(api.get_call, call_id)).calls_configuration_id == SECOND_APP

        await run(
            api.call_play_file, call_id, CallsPlayRequest(content=CallsFilePlayContent(fileId=uploaded.id))
        )
        await second.wait_for("PLAY_FINISHED", call_id)
        record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
        assert record["targets"] == [
            {"action": "SUBSCRIPTION", "id": CONFIGURATION_ID},
            {"action": "SUBSCRIPTION", "id": SECOND_APP},
        ]
        await run(api.hangup_call, call_id, CallsHangupRequest())
        await second.wait_for("CALL_FINISHED", call_id)
        await call.wait_state("TERMINATED")
        assert tone_windows(call.heard_pcm(), 750) >= 8, "the user heard the second app's audio"
        assert not [e for e in first.events if e["type"] == "PLAY_FINISHED"]
    finally:
        await second.stop()
