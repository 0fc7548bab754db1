"""A real SIP phone (baresip) as the PBX extension: the Calls API calls it over a STATIC trunk, it answers by
itself, and the tone the app plays is what it hears."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.audio import tone_wav, tone_windows
from support.baresip import RATE, needs_baresip, running_baresip
from support.platform import CONFIGURATION_ID, running_platform
from support.sipp import free_port

pytestmark = [pytest.mark.e2e, needs_baresip, pytest.mark.timeout(120)]


async def test_an_app_calls_baresip_over_a_trunk_and_it_hears_the_played_tone(tmp_path: Path) -> None:
    sip = {"listen": [f"udp:127.0.0.1:{free_port('udp')}"]}
    async with (
        running_platform(tmp_path, sip=sip) as platform,
        running_baresip(tmp_path / "phone", "ext100", tone_hz=440, auto_answer=True) as phone,
    ):
        await platform.subscribe()
        trunk = await platform.api.post(
            "/calls/1/sip-trunks",
            json={
                "type": "STATIC",
                "name": "baresip",
                "channelLimit": 1,
                "billingPackage": {"packageType": "METERED"},
                "codecs": ["PCMU"],
                "destinationHosts": [f"127.0.0.1:{phone.sip_port}"],
            },
        )
        assert trunk.status_code == 202, trunk.text
        created = await platform.api.post(
            "/calls/1/calls",
            json={
                "endpoint": {"type": "SIP", "sipTrunkId": trunk.json()["id"], "username": "ext100"},
                "from": "alice",
                "callsConfigurationId": CONFIGURATION_ID,
                "connectTimeout": 30,
            },
        )
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]
        await platform.app.wait_for("CALL_ESTABLISHED", call_id)
        await phone.wait_event("CALL_ESTABLISHED")
        files = {"file": ("tone.wav", tone_wav(1000, 2.0), "audio/wav")}
        file_id = (await platform.api.post("/calls/1/files", files=files)).json()["id"]
        played = await platform.api.post(
            f"/calls/1/calls/{call_id}/play", json={"content": {"type": "FILE", "fileId": file_id}}
        )
        assert played.status_code == 200, played.text
        await platform.app.wait_for("PLAY_FINISHED", call_id)
        await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
        await platform.app.wait_for("CALL_FINISHED", call_id)
        await phone.wait_event("CALL_CLOSED")  # baresip's recording is complete once it closed the call
        pcm = phone.heard_pcm()
    assert tone_windows(pcm, 1000, rate=RATE) >= 10, "baresip did not hear the 1 kHz tone"
