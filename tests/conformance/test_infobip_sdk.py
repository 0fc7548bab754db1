"""Infobip's own Python SDK (`infobip-api-python-client` 6.0.0) against a running Switchboard Calls API.

The SDK is synchronous (urllib3); it runs in a worker thread while the server runs on the test's loop.
Every call must come back as a parsed object: a wrong status code or shape leaves `data=None`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.calls_api import CallsApi as SdkCallsApi
from infobip_api_client.models.call_request import CallRequest
from infobip_api_client.models.calls_answer_request import CallsAnswerRequest
from infobip_api_client.models.calls_configuration_create_request import (
    CallsConfigurationCreateRequest,
)
from infobip_api_client.models.calls_dtmf_capture_request import CallsDtmfCaptureRequest
from infobip_api_client.models.calls_hangup_request import CallsHangupRequest
from infobip_api_client.models.calls_phone_endpoint import CallsPhoneEndpoint
from infobip_api_client.models.calls_say_request import CallsSayRequest
from infobip_api_client.models.calls_whats_app_endpoint import CallsWhatsAppEndpoint
from infobip_api_client.rest import ApiException

from support.calls_api_harness import (
    API_KEY,
    CALLER,
    CONFIG_ID,
    SENDER_NUMBER,
    Harness,
    running_harness,
    running_receiver,
)

T = TypeVar("T")


def sdk(h: Harness, key: str = API_KEY) -> SdkCallsApi:
    config = Configuration(host=h.base_url, api_key=key)
    return SdkCallsApi(ApiClient(config))


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def test_configurations_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        created = await run(
            api.create_calls_configuration_with_http_info,
            CallsConfigurationCreateRequest(name="Made by the SDK"),
        )
        assert created.status_code == 201
        assert created.data is not None and created.data.name == "Made by the SDK"
        page = await run(api.get_calls_configurations)
        assert page is not None and page.paging is not None
        assert {c.id for c in page.results or []} == {CONFIG_ID, created.data.id}
        one = await run(api.get_calls_configuration, CONFIG_ID)
        assert one.id == CONFIG_ID


async def test_bad_key_raises_unauthorized(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        try:
            await run(sdk(h, "wrong").get_calls_configurations)
        except ApiException as exc:
            assert exc.status == 401
            assert "serviceException" in (exc.body or "")
        else:
            raise AssertionError("the SDK accepted a bad key")


async def test_call_flow_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h, running_receiver() as (receiver, url):
        await h.subscribe(url)
        api = sdk(h)
        call_id = await h.inbound_call()

        calls = await run(api.get_calls)
        assert calls is not None and [c.id for c in calls.results or []] == [call_id]
        assert calls.results is not None and calls.results[0].endpoint.phone_number == CALLER  # type: ignore[union-attr]

        answered = await run(api.answer_call_with_http_info, call_id, CallsAnswerRequest())
        assert answered.status_code == 200 and answered.data is not None
        assert answered.data.status is not None and answered.data.status.value == "PENDING"
        await receiver.wait_for("CALL_ESTABLISHED", call_id)

        said = await run(api.call_say_text, call_id, CallsSayRequest(text="Welcome", language="en"))
        assert said is not None and said.status is not None
        h.leg(call_id).finish_playback()
        await receiver.wait_for("SAY_FINISHED", call_id)

        captured = await run(
            api.call_capture_dtmf,
            call_id,
            CallsDtmfCaptureRequest(maxLength=4, timeout=10000, terminator="#"),
        )
        assert captured is not None and captured.status is not None
        h.leg(call_id).press("42#")
        event = await receiver.wait_for("DTMF_CAPTURED", call_id)
        assert event.json["properties"]["dtmf"] == "42"

        call = await run(api.get_call, call_id)
        assert call.id == call_id and call.state is not None and call.state.value == "ESTABLISHED"
        assert call.start_time is not None and call.start_time.tzinfo is not None

        hung = await run(api.hangup_call_with_http_info, call_id, CallsHangupRequest())
        assert hung.status_code == 200 and hung.data is not None
        assert hung.data.state is not None and hung.data.state.value == "FINISHED"

        finished = await run(api.get_call, call_id)
        assert finished.state is not None and finished.state.value == "FINISHED"
        log = await run(api.get_call_history, call_id)
        assert log.call_id == call_id and isinstance(log.duration, int)
        history = await run(api.get_calls_history)
        assert history.results is not None and [x.call_id for x in history.results] == [call_id]

        try:
            await run(api.get_call, "no-such-call")
        except ApiException as exc:
            assert exc.status == 404
        else:
            raise AssertionError("unknown call did not raise")


async def test_upload_file_through_the_sdk(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "hello.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000)
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        uploaded = await run(api.upload_calls_audio_file_with_http_info, str(path))
        assert uploaded.status_code == 200 and uploaded.data is not None
        assert uploaded.data.name == "hello.wav" and uploaded.data.file_format.value == "WAV"
        files = await run(api.get_calls_files)
        assert files.results is not None and files.results[0].id == uploaded.data.id
        one = await run(api.get_calls_file, uploaded.data.id)
        assert one.duration == 1


async def test_outbound_calls_through_the_sdk(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        api = sdk(h)
        try:
            await run(
                api.create_call,
                CallRequest(
                    endpoint=CallsPhoneEndpoint(phoneNumber="447700900999"),
                    var_from=SENDER_NUMBER,
                    callsConfigurationId=CONFIG_ID,
                ),
            )
        except ApiException as exc:
            assert exc.status == 403 and "PSTN" in (exc.body or "")
        else:
            raise AssertionError("a PHONE endpoint was dialled")
        await h.grant_permission(CALLER)
        created = await run(
            api.create_call_with_http_info,
            CallRequest(
                endpoint=CallsWhatsAppEndpoint(phoneNumber=CALLER),
                var_from=SENDER_NUMBER,
                callsConfigurationId=CONFIG_ID,
                connectTimeout=30,
            ),
        )
        assert created.status_code == 201 and created.data is not None
        assert created.data.direction is not None and created.data.direction.value == "OUTBOUND"
