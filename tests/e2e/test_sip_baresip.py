"""baresip, a real SIP phone, as the business's PBX: WhatsApp users (the Meta emulator's WebRTC peers)
reach it through call routing over STATIC and REGISTERED trunks, and it calls them. Audio is checked by
tone frequency on the side that hears it; DTMF by the keys baresip reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.audio import tone_windows
from support.baresip import needs_baresip, running_baresip
from support.platform import DISPLAY_NUMBER, PHONE_NUMBER_ID, Platform, running_platform
from support.routing import create_route, route_sender_calls, until
from support.sip_trunks import create_trunk, sip_listening_platform
from support.sipp import free_port

pytestmark = [pytest.mark.e2e, needs_baresip, pytest.mark.timeout(60)]

CALLER = "15550002222"
USER = "15550003333"
PBX_TONE = 1000.0
USER_TONE = 600.0
BARESIP_CODECS = {"PCMU": ("g711",), "OPUS": ("opus",)}


@pytest.fixture
async def sip_platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    async with sip_listening_platform(tmp_path) as platform_and_port:
        yield platform_and_port


async def route_whatsapp_calls_to(platform: Platform, trunk: str, username: str) -> None:
    """WhatsApp calls to the sender enter call routing, whose route sends them to `username` on `trunk`."""
    await create_route(
        platform,
        [{"to": DISPLAY_NUMBER, "value": {"type": "WHATSAPP", "from": "1555.*"}}],
        [{"type": "ENDPOINT", "value": {"type": "SIP", "sipTrunkId": trunk, "username": username}}],
    )
    await route_sender_calls(platform)


@pytest.mark.parametrize(
    ("codec", "hangs_up"), [("PCMU", "user"), ("PCMU", "pbx"), ("OPUS", "user"), ("OPUS", "pbx")]
)
async def test_a_routed_whatsapp_call_reaches_baresip_with_audio_both_ways_and_dtmf(
    sip_platform: tuple[Platform, int], tmp_path: Path, codec: str, hangs_up: str
) -> None:
    """PCMU: Opus ⇄ G.711 transcoded; OPUS: passed through. The user's keys arrive as RFC 4733."""
    platform, _ = sip_platform
    async with running_baresip(
        tmp_path / "pbx", "desk", tone_hz=PBX_TONE, auto_answer=True, codecs=BARESIP_CODECS[codec]
    ) as pbx:
        trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx.sip_port}"], codecs=[codec])
        await route_whatsapp_calls_to(platform, trunk, "desk")
        caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)
        caller.play_tone(USER_TONE)
        await pbx.wait_event("CALL_ESTABLISHED")
        await caller.wait_connected()
        await until(lambda: tone_windows(caller.heard_pcm(), PBX_TONE) >= 8)
        await caller.press("19#", duration_ms=120, gap_ms=120)
        await until(lambda: pbx.keys_received() == "19#")
        if hangs_up == "user":
            await caller.hang_up()
        else:
            await pbx.command("hangup")
            await caller.wait_state("TERMINATED")
        await pbx.wait_event("CALL_CLOSED")
    pcm, rate = pbx.heard()
    assert rate == (48000 if codec == "OPUS" else 8000), "baresip decoded another codec than the trunk's"
    assert tone_windows(pcm, USER_TONE, rate=rate) >= 8


@pytest.fixture
async def md5_registrar_platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    """baresip 1.x refuses a 401 that also offers SHA-256, so REGISTERED trunks are challenged with MD5."""
    port = free_port("udp")
    sip = {"listen": [f"udp:127.0.0.1:{port}"], "digest_algorithms": ["MD5"]}
    async with running_platform(tmp_path, sip=sip) as platform:
        yield platform, port


async def test_baresip_registers_on_a_registered_trunk_and_receives_a_routed_call(
    md5_registrar_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = md5_registrar_platform
    created = await platform.api.post(
        "/calls/1/sip-trunks",
        json={
            "type": "REGISTERED",
            "name": "Branch",
            "channelLimit": 2,
            "billingPackage": {"packageType": "METERED"},
            "codecs": ["PCMU"],
        },
    )
    assert created.status_code == 202, created.text
    trunk = created.json()
    status = f"/calls/1/sip-trunks/{trunk['id']}/status"
    assert (await platform.api.get(status)).json()["registrationStatus"] == "UNREGISTERED"
    username, password = trunk["username"], trunk["password"]
    async with running_baresip(
        tmp_path / "pbx",
        username,
        tone_hz=PBX_TONE,
        auto_answer=True,
        registrar=f"127.0.0.1:{port}",
        password=password,
    ) as pbx:
        await pbx.wait_event("REGISTER_OK")
        assert (await platform.api.get(status)).json()["registrationStatus"] == "REGISTERED"
        await route_whatsapp_calls_to(platform, trunk["id"], username)
        caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)
        caller.play_tone(USER_TONE)
        await pbx.wait_event("CALL_ESTABLISHED")
        await caller.wait_connected()
        await until(lambda: tone_windows(caller.heard_pcm(), PBX_TONE) >= 8)
        await caller.hang_up()
        await pbx.wait_event("CALL_CLOSED")
    assert tone_windows(pbx.heard_pcm(), USER_TONE, rate=8000) >= 8


async def route_pbx_calls_to_whatsapp(platform: Platform, codec: str = "PCMU") -> None:
    """Calls from baresip's host enter routing on a STATIC trunk and go to the WhatsApp user they dial,
    from the sender named by the SIP From user."""
    trunk = await create_trunk(platform, sourceHosts=["127.0.0.1"], codecs=[codec])
    await create_route(
        platform,
        [{"value": {"type": "SIP", "sipTrunkId": trunk}}],
        [{"type": "ENDPOINT", "value": {"type": "WHATSAPP"}}],
    )


async def test_baresip_calls_a_whatsapp_user_over_an_opus_trunk_with_audio_both_ways(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    """The PCMU (transcoded) variant is in test_sip_routing.py."""
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform, "OPUS")
    user = platform.emulator.user(USER, name="Wa")
    user.answer.delay = 0.5
    user.auto_tone = USER_TONE
    await platform.grant_permission(USER)
    async with running_baresip(tmp_path / "pbx", DISPLAY_NUMBER, tone_hz=PBX_TONE, codecs=("opus",)) as pbx:
        await pbx.command("dial", f"sip:{USER}@127.0.0.1:{port}")
        await pbx.wait_event("CALL_RINGING")
        incoming = await user.next_incoming()
        await pbx.wait_event("CALL_ESTABLISHED")
        await incoming.wait_connected()
        await until(lambda: tone_windows(incoming.heard_pcm(), PBX_TONE) >= 8)
        await asyncio.sleep(1.5)
        await pbx.command("hangup")
        await incoming.wait_state("TERMINATED")
        await pbx.wait_event("CALL_CLOSED")
    pcm, rate = pbx.heard()
    assert rate == 48000
    assert tone_windows(pcm, USER_TONE, rate=rate) >= 8


async def test_baresip_calling_a_user_without_permission_gets_403_naming_it_and_meta_is_not_asked(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    user = platform.emulator.user(USER, name="Wa")
    pbx_dir = tmp_path / "pbx"
    async with running_baresip(pbx_dir, DISPLAY_NUMBER, tone_hz=PBX_TONE, sip_trace=True) as pbx:
        await pbx.command("dial", f"sip:{USER}@127.0.0.1:{port}")
        closed = await pbx.wait_event("CALL_CLOSED")
    assert closed["param"].startswith("403"), closed
    response = pbx.log().split("SIP/2.0 403", 1)[1].split("\n\n", 1)[0]
    reason = [line for line in response.splitlines() if line.startswith("Reason:")]
    assert reason and "has not granted call permission" in reason[0], response
    assert user.calls == []
    assert [r.path for r in platform.emulator.requests if r.path.endswith("/calls")] == []


async def test_a_user_who_declines_baresips_call_gets_it_a_603(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    user = platform.emulator.user(USER, name="Wa")
    user.answer.mode = "decline"
    user.answer.delay = 0.3
    await platform.grant_permission(USER)
    async with running_baresip(tmp_path / "pbx", DISPLAY_NUMBER, tone_hz=PBX_TONE) as pbx:
        await pbx.command("dial", f"sip:{USER}@127.0.0.1:{port}")
        await pbx.wait_event("CALL_RINGING")
        declined = await user.next_incoming()
        closed = await pbx.wait_event("CALL_CLOSED")
    await declined.wait_state("REJECTED")
    assert closed["param"].startswith("603"), closed
