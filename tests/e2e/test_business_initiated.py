"""A business calls a WhatsApp user: refused until the user grants call permission, then connected with
audio both ways."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from support.audio import tone_wav, tone_windows
from support.platform import CONFIGURATION_ID, DISPLAY_NUMBER, PHONE_NUMBER_ID, Platform
from switchboard.media.tones import tone_power_ratio

pytestmark = pytest.mark.e2e
USER = "15550003333"


def call_request() -> dict[str, object]:
    return {
        "endpoint": {"type": "WHATSAPP", "phoneNumber": USER},
        "from": DISPLAY_NUMBER,
        "callsConfigurationId": CONFIGURATION_ID,
        "connectTimeout": 30,
    }


def graph_actions(platform: Platform, path_end: str) -> list[dict[str, object]]:
    return [
        body
        for method, path, body in platform.emulator.requests
        if method == "POST" and path.endswith(path_end)
    ]


async def test_call_needs_permission_then_connects_with_audio_both_ways(platform: Platform) -> None:
    await platform.subscribe()
    user = platform.emulator.user(USER, name="Cy")
    user.auto_tone = 600.0

    refused = await platform.api.post("/calls/1/calls", json=call_request())
    assert refused.status_code == 403, refused.text
    assert "has not granted call permission" in refused.json()["requestError"]["serviceException"]["text"]
    assert graph_actions(platform, "/calls") == [], "a call was dialled without permission"

    permission = f"/whatsapp/1/senders/{DISPLAY_NUMBER}/calls/{USER}/permissions"
    assert (await platform.api.get(permission)).json()["status"] == "NO_PERMISSION"
    sent = await platform.api.post(
        "/whatsapp/1/message/interactive/call-permission-request",
        json={"from": DISPLAY_NUMBER, "to": USER, "text": "May we call you about your order?"},
    )
    assert sent.status_code == 200, sent.text
    [message] = graph_actions(platform, "/messages")
    assert message["interactive"]["type"] == "call_permission_request"  # type: ignore[index]
    again = await platform.api.post(
        "/whatsapp/1/message/interactive/call-permission-request",
        json={"from": DISPLAY_NUMBER, "to": USER},
    )
    assert again.status_code == 403 and "limit" in again.text

    await platform.grant_permission(user.wa_id)
    state = (await platform.api.get(permission)).json()
    assert state["status"] == "TEMPORARY"
    assert {a["name"]: a["canPerformAction"] for a in state["actions"]}["START_CALL"] is True

    created = await platform.api.post("/calls/1/calls", json={**call_request(), "externalId": "order-42"})
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    assert created.json()["direction"] == "OUTBOUND"
    assert created.json()["externalId"] == "order-42"
    user_call = await user.next_incoming()
    await platform.app.wait_for("CALL_RINGING", call_id)
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await user_call.wait_connected()

    start = await platform.api.post(f"/calls/1/calls/{call_id}/start-recording", json={})
    assert start.status_code == 200, start.text
    files = {"file": ("tone.wav", tone_wav(1000, 2.0), "audio/wav")}
    file_id = (await platform.api.post("/calls/1/files", files=files)).json()["id"]
    await platform.api.post(
        f"/calls/1/calls/{call_id}/play", json={"content": {"type": "FILE", "fileId": file_id}}
    )
    await platform.app.wait_for("PLAY_FINISHED", call_id)
    await platform.api.post(f"/calls/1/calls/{call_id}/stop-recording", json={})
    ready = await platform.app.wait_for("CALL_RECORDING_READY", call_id)
    recording_id = ready["properties"]["recording"]["files"][0]["id"]
    await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
    await platform.app.wait_for("CALL_FINISHED", call_id)
    await user_call.wait_state("TERMINATED")

    assert tone_windows(user_call.heard_pcm(), 1000) >= 10, "the user did not hear the business"
    download = await platform.api.get(f"/calls/1/recordings/files/{recording_id}")
    assert download.status_code == 200
    with wave.open(io.BytesIO(download.content)) as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert tone_power_ratio(pcm, rate, 600) > 0.15, "the recording does not hold the user's 600 Hz tone"
    assert tone_power_ratio(pcm, rate, 1000) > 0.15, "the recording does not hold what the user heard"
    [connect] = [b for b in graph_actions(platform, "/calls") if b.get("action") == "connect"]
    assert connect["to"] == USER


async def test_meta_refusal_for_lack_of_permission_fails_the_call_and_forgets_the_permission(
    platform: Platform,
) -> None:
    await platform.subscribe()
    user = platform.emulator.user(USER, name="Cy")
    await platform.grant_permission(user.wa_id)
    platform.emulator.permission(USER, PHONE_NUMBER_ID).revoke()

    refused = await platform.api.post("/calls/1/calls", json=call_request())
    assert refused.status_code == 403, refused.text
    assert "no approved call permission" in refused.text
    failed = await platform.app.wait_for("CALL_FAILED")
    assert failed["properties"]["callLog"]["errorCode"]["name"] == "FORBIDDEN"
    permission = f"/whatsapp/1/senders/{DISPLAY_NUMBER}/calls/{USER}/permissions"
    assert (await platform.api.get(permission)).json()["status"] == "NO_PERMISSION"


async def test_max_duration_and_recording_from_answer(platform: Platform) -> None:
    await platform.subscribe()
    user = platform.emulator.user(USER, name="Cy")
    await platform.grant_permission(user.wa_id)
    body = {**call_request(), "maxDuration": 2, "recording": {"recordingType": "AUDIO"}}
    created = await platform.api.post("/calls/1/calls", json=body)
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    user_call = await user.next_incoming()
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    finished = await platform.app.wait_for("CALL_FINISHED", call_id, timeout=15)
    log = finished["properties"]["callLog"]
    assert log["hangupSource"] == "PLATFORM"
    assert "maximum duration of 2 s" in log["errorCode"]["description"]
    assert 1 <= log["duration"] <= 3
    await user_call.wait_state("TERMINATED")
    ready = await platform.app.wait_for("CALL_RECORDING_READY", call_id)
    [file] = ready["properties"]["recording"]["files"]
    assert 1 <= file["duration"] <= 3
    download = await platform.api.get(f"/calls/1/recordings/files/{file['id']}")
    assert download.status_code == 200 and download.content[:4] == b"RIFF"


async def test_numbers_are_normalised_wherever_the_api_takes_them(platform: Platform) -> None:
    await platform.subscribe()
    user = platform.emulator.user("15550005004", name="Flo")
    sent = await platform.api.post(
        "/whatsapp/1/message/interactive/call-permission-request",
        json={"from": "+1 555-010-0200", "to": "+1 (555) 000-5004"},
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["to"] == "15550005004"
    await platform.grant_permission(user.wa_id)
    for written in ("+15550005004", "+1 555 000 5004", "1-555-000-5004"):
        state = await platform.api.get(f"/whatsapp/1/senders/+1-555-010-0200/calls/{written}/permissions")
        assert state.status_code == 200 and state.json()["status"] == "TEMPORARY", (written, state.text)

    body = {
        **call_request(),
        "endpoint": {"type": "WHATSAPP", "phoneNumber": "+1 555-000-5004"},
        "from": "+1 555 010 0200",
    }
    created = await platform.api.post("/calls/1/calls", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["endpoint"]["phoneNumber"] == "15550005004"
    assert created.json()["to"] == "15550005004"
    call_id = created.json()["id"]
    user_call = await user.next_incoming()
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
    await user_call.wait_state("TERMINATED")

    for bad in ("+1 555 CALL ME", "", "++", "1" * 16):
        refused = await platform.api.post(
            "/calls/1/calls", json={**body, "endpoint": {"type": "WHATSAPP", "phoneNumber": bad}}
        )
        assert refused.status_code == 400 and "phoneNumber" in refused.text, (bad, refused.text)
    bad_path = await platform.api.get(f"/whatsapp/1/senders/{DISPLAY_NUMBER}/calls/not-a-number/permissions")
    assert bad_path.status_code == 400 and "user" in bad_path.text.lower(), bad_path.text
