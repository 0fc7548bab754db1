"""A WhatsApp user calls a business number; the business's own app handles the call over the Calls API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from support.audio import tone_wav, tone_windows
from support.platform import PHONE_NUMBER_ID, Platform

pytestmark = pytest.mark.e2e


async def upload_tone(platform: Platform, frequency: float, seconds: float) -> str:
    files = {"file": ("tone.wav", tone_wav(frequency, seconds), "audio/wav")}
    response = await platform.api.post("/calls/1/files", files=files)
    assert response.status_code == 200, response.text
    file_id: str = response.json()["id"]
    return file_id


async def act(platform: Platform, call_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
    response = await platform.api.post(f"/calls/1/calls/{call_id}/{action}", json=body or {})
    assert response.status_code == 200, f"{action}: {response.status_code} {response.text}"
    return response.json()


async def test_app_answers_says_plays_captures_dtmf_and_hangs_up(
    platform_on_each_database: Platform,
) -> None:
    platform = platform_on_each_database
    await platform.subscribe()
    tone_id = await upload_tone(platform, 1000, 1.5)
    user = platform.emulator.user("15550001111", name="Ana")
    call = await user.call(PHONE_NUMBER_ID)

    received = await platform.app.wait_for("CALL_RECEIVED")
    call_id = received["callId"]
    assert received["callsConfigurationId"] == "e2e-app"
    assert received["properties"]["call"]["endpoint"]["type"] == "WHATSAPP"
    assert received["properties"]["call"]["direction"] == "INBOUND"

    await act(platform, call_id, "answer")
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await call.wait_connected()

    await act(platform, call_id, "say", {"text": "Hello from Switchboard.", "language": "en"})
    said = await platform.app.wait_for("SAY_FINISHED", call_id)
    assert said["properties"]["playedCompletely"] is True

    await act(platform, call_id, "play", {"content": {"type": "FILE", "fileId": tone_id}})
    await platform.app.wait_for("PLAY_FINISHED", call_id)

    await act(platform, call_id, "capture/dtmf", {"maxLength": 10, "timeout": 15000, "terminator": "#"})
    await call.press("123#")
    captured = await platform.app.wait_for("DTMF_CAPTURED", call_id)
    assert captured["properties"]["dtmf"] == "123"

    hangup = await act(platform, call_id, "hangup")
    assert hangup["state"] == "FINISHED"
    finished = await platform.app.wait_for("CALL_FINISHED", call_id)
    log = finished["properties"]["callLog"]
    assert isinstance(log["duration"], int) and log["duration"] >= 1
    assert log["state"] == "FINISHED"

    await call.wait_state("TERMINATED")
    record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
    assert record["state"] == "FINISHED"
    assert record["mediaDiagnostics"]["packetsReceived"] > 0

    heard = call.heard_pcm()
    assert tone_windows(heard, 1000) >= 8, "the user did not hear the 1 kHz tone the app played"
    types = platform.app.types(call_id)
    assert types.index("CALL_RECEIVED") < types.index("CALL_ESTABLISHED") < types.index("CALL_FINISHED")


async def test_no_audio_reaches_the_user_before_the_call_is_accepted(platform: Platform) -> None:
    """Meta: the business sends media only after `accept` returned 200 (pre_accept only connects)."""
    await platform.subscribe()
    tone_id = await upload_tone(platform, 1000, 3.0)
    call = await platform.emulator.user("15550001212").call(PHONE_NUMBER_ID)
    call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    await act(platform, call_id, "pre-answer")
    await call.wait_connected()
    await act(platform, call_id, "play", {"content": {"type": "FILE", "fileId": tone_id}})
    await asyncio.sleep(1.0)
    assert tone_windows(call.heard_pcm(), 1000) == 0, "audio was sent before accept"
    await act(platform, call_id, "answer")
    await platform.app.wait_for("PLAY_FINISHED", call_id)
    assert tone_windows(call.heard_pcm(), 1000) >= 10
    await act(platform, call_id, "hangup")
    await platform.app.wait_for("CALL_FINISHED", call_id)
