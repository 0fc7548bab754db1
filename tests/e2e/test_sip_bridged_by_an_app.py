"""A Calls API app bridges a WhatsApp user's call to a PBX extension over a STATIC trunk (the seed's "own
app → WhatsApp, bridged to SIP"): through `POST /calls/1/dialogs` with a SIP child call request, and by
placing the SIP call with `POST /calls/1/calls` and joining the two in a dialog. baresip is the extension;
each side hears the other's tone and one hanging up ends both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from support.audio import tone_windows
from support.baresip import RATE, needs_baresip, running_baresip
from support.platform import CONFIGURATION_ID, DISPLAY_NUMBER, PHONE_NUMBER_ID
from support.sip_trunks import create_trunk, sip_listening_platform
from support.sipp import needs_sipp

pytestmark = [pytest.mark.e2e, needs_sipp, needs_baresip, pytest.mark.timeout(120)]

CALLER = "15550009999"
PBX_TONE, CALLER_TONE = 1000.0, 700.0


async def bridge(tmp_path: Path, how: str) -> None:
    async with (
        sip_listening_platform(tmp_path) as (platform, _),
        running_baresip(tmp_path / "pbx", "desk", tone_hz=PBX_TONE, auto_answer=True) as pbx,
    ):
        await platform.subscribe()
        trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx.sip_port}"])
        caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)
        caller.play_tone(CALLER_TONE)
        parent_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
        answered = await platform.api.post(f"/calls/1/calls/{parent_id}/answer", json={})
        assert answered.status_code == 200, answered.text
        extension = {"type": "SIP", "sipTrunkId": trunk, "username": "desk"}
        if how == "dialog":
            created = await platform.api.post(
                "/calls/1/dialogs",
                json={
                    "parentCallId": parent_id,
                    "childCallRequest": {"endpoint": extension, "from": DISPLAY_NUMBER},
                },
            )
        else:
            placed = await platform.api.post(
                "/calls/1/calls",
                json={
                    "endpoint": extension,
                    "from": DISPLAY_NUMBER,
                    "callsConfigurationId": CONFIGURATION_ID,
                },
            )
            assert placed.status_code == 201, placed.text
            child_id = placed.json()["id"]
            await platform.app.wait_for("CALL_ESTABLISHED", child_id)
            created = await platform.api.post(
                f"/calls/1/dialogs/parent-call/{parent_id}/child-call/{child_id}", json={}
            )
        assert created.status_code in (200, 201), created.text
        dialog_id = created.json()["id"]
        await platform.app.wait_for("DIALOG_ESTABLISHED", parent_id)
        await pbx.wait_event("CALL_ESTABLISHED")
        await caller.wait_connected()
        async with asyncio.timeout(20):
            while tone_windows(caller.heard_pcm(), PBX_TONE) < 8:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        await pbx.command("hangup")
        await platform.app.wait_for("DIALOG_FINISHED", parent_id)
        await caller.wait_state("TERMINATED")
        await pbx.wait_event("CALL_CLOSED")
        dialog = (await platform.api.get(f"/calls/1/dialogs/{dialog_id}")).json()
        assert dialog["state"] == "FINISHED"
    assert tone_windows(pbx.heard_pcm(), CALLER_TONE, rate=RATE) >= 8


@pytest.mark.parametrize("how", ["dialog", "call then dialog"])
async def test_an_app_bridges_a_whatsapp_caller_to_a_pbx_extension(tmp_path: Path, how: str) -> None:
    await bridge(tmp_path, how)
