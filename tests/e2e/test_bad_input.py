"""Bad input and failing peers: each gets a clear answer, none crashes the server or loses an event."""

from __future__ import annotations

import json

import httpx
import pytest

from support.platform import DISPLAY_NUMBER, PHONE_NUMBER_ID, WABA_ID, Platform
from switchboard.channels.whatsapp.signature import sign

pytestmark = pytest.mark.e2e
USER = "15550004444"


def notification(calls: list[dict[str, object]]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Dee"}, "wa_id": USER}],
        "calls": calls,
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "calls", "value": value}]}],
    }
    return json.dumps(body).encode()


def connect(call_id: str) -> dict[str, object]:
    return {
        "id": call_id,
        "to": DISPLAY_NUMBER,
        "from": USER,
        "event": "connect",
        "timestamp": "1764000000",
        "direction": "USER_INITIATED",
        "session": {"sdp_type": "offer", "sdp": "v=0\r\n"},
    }


def terminate(call_id: str) -> dict[str, object]:
    return {
        "id": call_id,
        "to": DISPLAY_NUMBER,
        "from": USER,
        "event": "terminate",
        "direction": "USER_INITIATED",
        "timestamp": "1764000001",
        "status": "COMPLETED",
    }


async def post_webhook(platform: Platform, body: bytes, signature: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = await platform.api.post("/webhooks/whatsapp", content=body, headers=headers)
    return response.status_code, response.text


async def active_calls(platform: Platform) -> list[dict[str, object]]:
    response = await platform.api.get("/calls/1/calls")
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


async def test_signature_json_and_shape_are_checked_before_anything_is_processed(platform: Platform) -> None:
    body = notification([connect("wacid.unsigned")])
    assert (await post_webhook(platform, body, None))[0] == 401
    assert (await post_webhook(platform, body, sign(body, "not-the-secret")))[0] == 403
    assert (await post_webhook(platform, body, "sha256=deadbeef"))[0] == 403
    assert await active_calls(platform) == []

    malformed = b'{"object": "whatsapp_business_account", "entry": ['
    status, text = await post_webhook(platform, malformed, sign(malformed, platform.app_secret))
    assert status == 400 and "not valid JSON" in text
    wrong = json.dumps({"object": "page", "entry": []}).encode()
    status, text = await post_webhook(platform, wrong, sign(wrong, platform.app_secret))
    assert status == 400 and "whatsapp_business_account" in text
    no_metadata = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "calls", "value": {}}]}],
        }
    ).encode()
    status, text = await post_webhook(platform, no_metadata, sign(no_metadata, platform.app_secret))
    assert status == 400 and "metadata" in text
    assert (await platform.api.get("/health")).status_code == 200


async def test_verification_handshake(platform: Platform) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "e2e-verify", "hub.challenge": "1158201444"}
    ok = await platform.api.get("/webhooks/whatsapp", params=params)
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = await platform.api.get("/webhooks/whatsapp", params={**params, "hub.verify_token": "nope"})
    assert bad.status_code == 403


async def test_unknown_call_ids(platform: Platform) -> None:
    missing = await platform.api.get("/calls/1/calls/no-such-call")
    assert missing.status_code == 404
    assert "no-such-call" in missing.json()["requestError"]["serviceException"]["text"]
    action = await platform.api.post("/calls/1/calls/no-such-call/answer", json={})
    assert action.status_code == 404
    body = notification([terminate("wacid.never-seen")])
    assert (await post_webhook(platform, body, sign(body, platform.app_secret)))[0] == 200


async def test_duplicate_connect_makes_one_call(platform: Platform) -> None:
    await platform.subscribe()
    call = await platform.emulator.user(USER).call(PHONE_NUMBER_ID)
    call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    first = platform.emulator.webhooks.deliveries[0]
    assert b'"connect"' in first.body
    assert await platform.emulator.webhooks.send_raw(first.body, first.signature) == 200
    assert await platform.emulator.webhooks.send_raw(first.body, first.signature) == 200
    assert [c["id"] for c in await active_calls(platform)] == [call_id]
    await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
    await platform.app.wait_for("CALL_FAILED", call_id)
    await call.wait_state("TERMINATED")
    assert platform.app.types(call_id).count("CALL_RECEIVED") == 1


async def test_terminate_before_connect_offers_no_call(platform: Platform) -> None:
    await platform.subscribe()
    gone = notification([terminate("wacid.early")])
    assert (await post_webhook(platform, gone, sign(gone, platform.app_secret)))[0] == 200
    late = notification([connect("wacid.early")])
    assert (await post_webhook(platform, late, sign(late, platform.app_secret)))[0] == 200
    assert await active_calls(platform) == []


async def test_graph_api_errors_and_timeouts(platform: Platform) -> None:
    await platform.subscribe()
    user = platform.emulator.user(USER)

    platform.emulator.faults.fail_next("pre_accept", status=500, count=1)
    platform.emulator.faults.hang_next("accept", 3.0, count=1)
    call = await user.call(PHONE_NUMBER_ID)
    call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    answered = await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})
    assert answered.status_code == 200, answered.text
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await call.wait_connected()
    await call.hang_up()
    await platform.app.wait_for("CALL_FINISHED", call_id)

    platform.emulator.faults.fail_next("accept", status=500, count=10)
    failing = await user.call(PHONE_NUMBER_ID)
    received = await platform.app.wait_for("CALL_RECEIVED", exclude=frozenset({call_id}))
    failing_id = received["callId"]
    refused = await platform.api.post(f"/calls/1/calls/{failing_id}/answer", json={})
    assert refused.status_code == 502
    assert "accept failed after 3 attempts (HTTP 500)" in refused.text
    failed = await platform.app.wait_for("CALL_FAILED", failing_id)
    assert failed["properties"]["callLog"]["errorCode"]["name"] == "SERVICE_UNAVAILABLE"
    await failing.wait_state("TERMINATED")
    assert (await platform.api.get(f"/calls/1/calls/{failing_id}")).json()["state"] == "FAILED"
    assert (await platform.api.get("/health")).status_code == 200


def refusal(response: httpx.Response) -> str:
    text: str = response.json()["requestError"]["serviceException"]["text"]
    return text


LIST_ROUTES = (
    "/calls/1/calls",
    "/calls/1/calls/history",
    "/calls/1/dialogs",
    "/calls/1/files",
    "/calls/1/recordings/calls",
    "/calls/1/configurations",
    "/subscriptions/1/subscription/VOICE_VIDEO",
)


async def test_huge_page_numbers_are_a_400_naming_the_parameter(platform: Platform) -> None:
    for path in LIST_ROUTES:
        for page in (2**63, 2**63 - 1, 2**62, 10**30):
            response = await platform.api.get(path, params={"page": page})
            assert response.status_code == 400, f"{path}?page={page}: {response.text}"
            assert refusal(response).startswith("query.page:"), refusal(response)
        huge_size = await platform.api.get(path, params={"size": 2**63})
        assert huge_size.status_code == 400 and "query.size" in refusal(huge_size)
        assert (await platform.api.get(path, params={"page": 3})).status_code == 200


async def answered_call(platform: Platform) -> str:
    await platform.subscribe()
    await platform.emulator.user(USER, name="Dee").call(PHONE_NUMBER_ID)
    call_id: str = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    answered = await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})
    assert answered.status_code == 200, answered.text
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    return call_id


async def test_out_of_range_call_actions_are_400s_naming_the_field(platform: Platform) -> None:
    call_id = await answered_call(platform)
    capture = f"/calls/1/calls/{call_id}/capture/dtmf"
    for timeout in ("1" + "0" * 400, str(2**63), "86400001"):
        body = ('{"maxLength": 4, "timeout": ' + timeout + "}").encode()
        response = await platform.api.post(
            capture, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert refusal(response).startswith("timeout:"), refusal(response)
    digit = await platform.api.post(capture, json={"maxLength": 4, "timeout": 5000, "digitTimeout": 2**63})
    assert digit.status_code == 400 and "digitTimeout" in refusal(digit)
    started = await platform.api.post(capture, json={"maxLength": 4, "timeout": 5000})
    assert started.status_code == 200, f"a refused capture was left behind: {started.text}"

    say = f"/calls/1/calls/{call_id}/say"
    for language in ("xx-zz", "klingon", "en_US;rm -rf", "zz"):
        unknown = await platform.api.post(say, json={"text": "Hello", "language": language})
        assert unknown.status_code == 400, f"{language}: {unknown.text}"
        assert refusal(unknown).startswith("language:"), refusal(unknown)
    text = {"type": "TEXT", "text": "Hello", "language": "xx-zz"}
    unknown_play = await platform.api.post(f"/calls/1/calls/{call_id}/play", json={"content": text})
    assert unknown_play.status_code == 400 and "language" in refusal(unknown_play)
    for body in (
        {"text": "Hello", "language": "en", "loopCount": 2**63},
        {"content": {"type": "FILE", "fileId": "x"}, "loopCount": 2**63},
    ):
        action = "say" if "text" in body else "play"
        looped = await platform.api.post(f"/calls/1/calls/{call_id}/{action}", json=body)
        assert looped.status_code == 400 and "loopCount" in refusal(looped), looped.text
    said = await platform.api.post(say, json={"text": "Hello", "language": "en-GB"})
    assert said.status_code == 200, said.text
    assert (await platform.api.get("/health")).status_code == 200


async def test_deeply_nested_json_is_a_400(platform: Platform) -> None:
    nested = b"[" * 10_000 + b"]" * 10_000
    deep = b'{"object": "whatsapp_business_account", "entry": ' + nested + b"}"
    status, text = await post_webhook(platform, deep, sign(deep, platform.app_secret))
    assert status == 400 and "nested" in text, text
    api = await platform.api.post(
        "/calls/1/configurations", content=nested, headers={"Content-Type": "application/json"}
    )
    assert api.status_code == 400 and "nested" in refusal(api), api.text
    assert (await platform.api.get("/health")).status_code == 200


async def test_unknown_routes_and_methods_answer_in_infobip_shape(platform: Platform) -> None:
    missing = await platform.api.get("/calls/1/no-such-route")
    assert missing.status_code == 404
    assert "/calls/1/no-such-route" in refusal(missing)
    assert missing.json()["requestError"]["serviceException"]["messageId"] == "NOT_FOUND"
    wrong = await platform.api.delete("/calls/1/calls")
    assert wrong.status_code == 405
    assert "DELETE" in refusal(wrong) and "GET" in refusal(wrong)
    assert "POST" in wrong.headers["allow"]
    assert wrong.json()["requestError"]["serviceException"]["messageId"] == "METHOD_NOT_ALLOWED"
