"""Bad input and failing peers: each gets a clear answer, none crashes the server or loses an event."""

from __future__ import annotations

import json

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
