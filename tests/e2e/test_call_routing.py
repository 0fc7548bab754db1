"""A WhatsApp user calls a sender whose inbound action is CALL_ROUTING; the route decides where the call
goes. Real server, the Meta emulator's WhatsApp users (real WebRTC peers) and a real Calls API app.

- Destinations that cannot take the call (a WebRTC identity while there is no WebRTC channel, a WhatsApp
  user without call permission) are passed over, and an APPLICATION destination hands the call to the
  Calls API app, whose audio the caller hears.
- A WhatsApp user who declines is passed over and the next one, who answers, is bridged to the caller
  with audio both ways.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from support.audio import tone_wav, tone_windows
from support.platform import CONFIGURATION_ID, DISPLAY_NUMBER, PHONE_NUMBER_ID, Platform
from support.routing import route_sender_calls

pytestmark = pytest.mark.e2e
CALLER = "15550002222"


async def route_calls(platform: Platform, destinations: list[dict[str, Any]]) -> str:
    """A route for WhatsApp calls to the sender, and the sender's calls handed to call routing."""
    created = await platform.api.post(
        "/callrouting/1/routes",
        json={
            "name": "whatsapp calls",
            "criteria": [{"to": DISPLAY_NUMBER, "value": {"type": "WHATSAPP", "from": "1555.*"}}],
            "destinations": destinations,
        },
    )
    assert created.status_code == 201, created.text
    await route_sender_calls(platform)
    return str(created.json()["id"])


async def test_failover_to_a_calls_api_application(platform: Platform) -> None:
    await platform.subscribe(
        events=[
            "CALL_ESTABLISHED",
            "PLAY_FINISHED",
            "APPLICATION_TRANSFER_REQUESTED",
            "APPLICATION_TRANSFER_FINISHED",
        ]
    )
    await route_calls(
        platform,
        [
            {"type": "ENDPOINT", "value": {"type": "WEBRTC", "identity": "desk-1"}},
            {"type": "ENDPOINT", "value": {"type": "WHATSAPP", "phoneNumber": "15550004444"}},
            {
                "type": "APPLICATION",
                "value": {"type": "CALLS_APPLICATION", "applicationId": CONFIGURATION_ID},
            },
        ],
    )
    unpermitted = platform.emulator.user("15550004444", name="Di")
    caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)

    requested = await platform.app.wait_for("APPLICATION_TRANSFER_REQUESTED")
    call_id = requested["callId"]
    transfer_id = requested["properties"]["transferId"]
    accepted = await platform.api.post(f"/calls/1/calls/{call_id}/application-transfer/{transfer_id}/accept")
    assert accepted.status_code == 200, accepted.text
    await platform.app.wait_for("APPLICATION_TRANSFER_FINISHED", call_id)
    assert (await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
    await platform.app.wait_for("CALL_ESTABLISHED", call_id)
    await caller.wait_connected()

    files = {"file": ("tone.wav", tone_wav(750, 1.5), "audio/wav")}
    file_id = (await platform.api.post("/calls/1/files", files=files)).json()["id"]
    played = await platform.api.post(
        f"/calls/1/calls/{call_id}/play", json={"content": {"type": "FILE", "fileId": file_id}}
    )
    assert played.status_code == 200, played.text
    await platform.app.wait_for("PLAY_FINISHED", call_id)
    assert tone_windows(caller.heard_pcm(), 750) >= 8
    assert unpermitted.calls == [], "a user without call permission was dialled"

    call = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
    assert call["callsConfigurationId"] == CONFIGURATION_ID
    await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
    await caller.wait_state("TERMINATED")


async def test_a_declining_user_is_passed_over_for_one_who_answers(
    platform_on_each_database: Platform,
) -> None:
    platform = platform_on_each_database
    decliner = platform.emulator.user("15550005555", name="Ed")
    decliner.answer.mode = "decline"
    decliner.answer.delay = 0.2
    answerer = platform.emulator.user("15550006666", name="Flo")
    answerer.answer.delay = 0.2
    answerer.auto_tone = 600.0
    for user in (decliner, answerer):
        await platform.grant_permission(user.wa_id)
    await route_calls(
        platform,
        [
            {"type": "ENDPOINT", "value": {"type": "WHATSAPP", "phoneNumber": decliner.wa_id}},
            {"type": "ENDPOINT", "value": {"type": "WHATSAPP", "phoneNumber": answerer.wa_id}},
        ],
    )
    caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)
    caller.play_tone(900.0)

    declined = await decliner.next_incoming()
    await declined.wait_state("REJECTED")
    answered = await answerer.next_incoming()
    await answered.wait_connected()
    await caller.wait_connected()
    await answered.wait_state("ACCEPTED")

    async def heard_both_ways() -> bool:
        return tone_windows(caller.heard_pcm(), 600) >= 8 and tone_windows(answered.heard_pcm(), 900) >= 8

    async with asyncio.timeout(20):
        while not await heard_both_ways():
            await asyncio.sleep(0.1)

    await caller.hang_up()
    await answered.wait_state("TERMINATED")
