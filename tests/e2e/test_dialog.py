"""A dialog bridges a WhatsApp user's inbound call with a call the app places to another WhatsApp user:
each hears the other, and one hanging up ends both."""

from __future__ import annotations

import asyncio

import pytest

from support.audio import tone_windows
from support.platform import DISPLAY_NUMBER, PHONE_NUMBER_ID, Platform

pytestmark = pytest.mark.e2e
CALLER, AGENT = "15550007777", "15550008888"


async def test_dialog_bridges_two_whatsapp_users(platform: Platform) -> None:
    await platform.subscribe()
    agent = platform.emulator.user(AGENT, name="Agent")
    agent.auto_tone = 900.0
    platform.emulator.permission(AGENT, PHONE_NUMBER_ID).grant(permanent=True)
    await platform.grant_permission(agent.wa_id, permanent=True)

    caller = await platform.emulator.user(CALLER, name="Caller").call(PHONE_NUMBER_ID)
    caller.play_tone(500)
    parent_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
    phone = await platform.api.post(
        "/calls/1/dialogs",
        json={
            "parentCallId": parent_id,
            "childCallRequest": {
                "endpoint": {"type": "PHONE", "phoneNumber": "447700900123"},
                "from": DISPLAY_NUMBER,
            },
        },
    )
    assert phone.status_code == 403 and "PSTN" in phone.text

    created = await platform.api.post(
        "/calls/1/dialogs",
        json={
            "parentCallId": parent_id,
            "childCallRequest": {
                "endpoint": {"type": "WHATSAPP", "phoneNumber": AGENT},
                "from": DISPLAY_NUMBER,
                "connectTimeout": 30,
            },
        },
    )
    assert created.status_code in (200, 201), created.text
    dialog_id = created.json()["id"]
    agent_call = await agent.next_incoming()
    established = await platform.app.wait_for("DIALOG_ESTABLISHED", parent_id)
    assert established["dialogId"] == dialog_id
    await caller.wait_connected()
    await agent_call.wait_connected()

    for _ in range(100):
        if tone_windows(caller.heard_pcm(), 900) >= 10 and tone_windows(agent_call.heard_pcm(), 500) >= 10:
            break
        await asyncio.sleep(0.1)
    assert tone_windows(caller.heard_pcm(), 900) >= 10, "the caller does not hear the agent"
    assert tone_windows(agent_call.heard_pcm(), 500) >= 10, "the agent does not hear the caller"

    await caller.hang_up()
    await platform.app.wait_for("DIALOG_FINISHED", parent_id)
    await agent_call.wait_state("TERMINATED")
    dialog = (await platform.api.get(f"/calls/1/dialogs/{dialog_id}")).json()
    assert dialog["state"] == "FINISHED"
