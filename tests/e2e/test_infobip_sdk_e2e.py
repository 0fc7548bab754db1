"""The inbound scenario driven through Infobip's official Python SDK, against a real server and the
emulated WhatsApp user (a real WebRTC peer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.calls_api import CallsApi as SdkCallsApi
from infobip_api_client.models.calls_answer_request import CallsAnswerRequest
from infobip_api_client.models.calls_dtmf_capture_request import CallsDtmfCaptureRequest
from infobip_api_client.models.calls_file_play_content import CallsFilePlayContent
from infobip_api_client.models.calls_hangup_request import CallsHangupRequest
from infobip_api_client.models.calls_play_request import CallsPlayRequest
from infobip_api_client.models.calls_say_request import CallsSayRequest

from support.audio import tone_wav, tone_windows
from support.platform import API_KEY, PHONE_NUMBER_ID, Platform

pytestmark = pytest.mark.e2e
T = TypeVar("T")


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def test_inbound_call_handled_through_the_official_sdk(platform: Platform, tmp_path: Path) -> None:
    await platform.subscribe()
    api = SdkCallsApi(ApiClient(Configuration(host=platform.server.url, api_key=API_KEY)))
    tone = tmp_path / "tone.wav"
    tone.write_bytes(tone_wav(750, 1.5))
    uploaded = await run(api.upload_calls_audio_file, str(tone))
    assert uploaded.id

    call = await platform.emulator.user("15550002222", name="Bo").call(PHONE_NUMBER_ID)
    call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    active = await run(api.get_calls)
    assert [c.id for c in active.results or []] == [call_id]

    answered = await run(api.answer_call, call_id, CallsAnswerRequest())
    assert answered.status is not None
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await call.wait_connected()

    await run(api.call_say_text, call_id, CallsSayRequest(text="Your order has shipped.", language="en"))
    await platform.app.wait_for("SAY_FINISHED", call_id)
    await run(api.call_play_file, call_id, CallsPlayRequest(content=CallsFilePlayContent(fileId=uploaded.id)))
    await platform.app.wait_for("PLAY_FINISHED", call_id)

    await run(
        api.call_capture_dtmf, call_id, CallsDtmfCaptureRequest(maxLength=6, timeout=15000, terminator="#")
    )
    await call.press("123#")
    captured = await platform.app.wait_for("DTMF_CAPTURED", call_id)
    assert captured["properties"]["dtmf"] == "123"

    hung = await run(api.hangup_call, call_id, CallsHangupRequest())
    assert hung.state is not None and hung.state.value == "FINISHED"
    finished = await platform.app.wait_for("CALL_FINISHED", call_id)
    assert isinstance(finished["properties"]["callLog"]["duration"], int)
    fetched = await run(api.get_call, call_id)
    assert fetched.state is not None and fetched.state.value == "FINISHED"
    log = await run(api.get_call_history, call_id)
    assert log.call_id == call_id and isinstance(log.duration, int)

    await call.wait_state("TERMINATED")
    assert tone_windows(call.heard_pcm(), 750) >= 8
