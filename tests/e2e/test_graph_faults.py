"""Faults of Meta's Graph API. `connect` is not idempotent: when its answer is lost, the user is called
once, never twice, and a Meta call that outlives its call here is hung up. A `terminate` that fails is
retried until the user's call has ended at Meta."""

from __future__ import annotations

import asyncio

import pytest

from support.platform import CONFIGURATION_ID, DISPLAY_NUMBER, PHONE_NUMBER_ID, Platform

pytestmark = pytest.mark.e2e
USER = "15550004444"
GRAPH_TIMEOUT_S = 2.0
"""`graph_timeout_s` of the test platform (support.platform)."""


def connects(platform: Platform) -> list[dict[str, object]]:
    return [
        body
        for method, path, body in platform.emulator.requests
        if method == "POST" and path.endswith("/calls") and body.get("action") == "connect"
    ]


def terminates(platform: Platform, wacid: str) -> list[dict[str, object]]:
    return [
        body
        for method, path, body in platform.emulator.requests
        if method == "POST" and body.get("action") == "terminate" and body.get("call_id") == wacid
    ]


async def place(platform: Platform, connect_timeout: int) -> str:
    user = platform.emulator.user(USER, name="Di")
    await platform.grant_permission(user.wa_id)
    body = {
        "endpoint": {"type": "WHATSAPP", "phoneNumber": USER},
        "from": DISPLAY_NUMBER,
        "callsConfigurationId": CONFIGURATION_ID,
        "connectTimeout": connect_timeout,
    }
    created = await platform.api.post("/calls/1/calls", json=body)
    assert created.status_code == 201, created.text
    call_id: str = created.json()["id"]
    return call_id


async def test_a_stalled_connect_is_not_repeated_and_the_call_goes_on(platform: Platform) -> None:
    await platform.subscribe()
    platform.emulator.faults.hang_next("connect", GRAPH_TIMEOUT_S + 1.5)
    call_id = await place(platform, connect_timeout=30)
    user_call = await platform.emulator.user(USER).next_incoming()
    await platform.app.wait_for("CALL_RINGING", call_id)
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await user_call.wait_connected()
    assert len(connects(platform)) == 1, "the user was called twice"
    record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
    assert record["state"] == "ESTABLISHED"
    await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
    await user_call.wait_state("TERMINATED")


async def test_a_meta_call_that_outlives_its_call_here_is_hung_up(platform: Platform) -> None:
    await platform.subscribe()
    platform.emulator.faults.hang_next("connect", GRAPH_TIMEOUT_S + 3.0)
    platform.emulator.user(USER).answer.mode = "no_answer"
    call_id = await place(platform, connect_timeout=1)
    failed = await platform.app.wait_for("CALL_FAILED", call_id, timeout=15)
    assert failed["properties"]["callLog"]["errorCode"]["name"] == "NO_ANSWER"
    user_call = await platform.emulator.user(USER).next_incoming(timeout=15)
    await user_call.wait_state("TERMINATED", timeout=15)
    assert len(connects(platform)) == 1, "the user was called twice"
    assert len(terminates(platform, user_call.call_id)) == 1, "Meta's call was not hung up"
    record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
    assert record["state"] == "NO_ANSWER"


async def test_a_failing_terminate_is_retried_until_the_call_ends_at_meta(platform: Platform) -> None:
    await platform.subscribe()
    user_call = await platform.emulator.user("15550005555", name="Ed").call(PHONE_NUMBER_ID)
    call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    assert (await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
    await user_call.wait_connected()
    platform.emulator.faults.fail_next("terminate", status=500, count=4)
    hung = await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
    assert hung.status_code == 200 and hung.json()["state"] == "FINISHED"
    await platform.app.wait_for("CALL_FINISHED", call_id)
    await user_call.wait_state("TERMINATED", timeout=20)
    for _ in range(100):
        record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
        if record.get("hangupDelivery") != "PENDING":
            break
        await asyncio.sleep(0.1)
    assert record["hangupDelivery"] == "DELIVERED"
    assert len(terminates(platform, user_call.call_id)) >= 5, "the terminate was retried"
