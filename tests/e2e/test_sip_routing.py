"""SIP trunking through call routing, both ways: a PBX (baresip, sipp) calls a WhatsApp user (the Meta
emulator's real WebRTC peer) over a STATIC trunk, and a WhatsApp user's call is routed to the PBX.
Audio is checked by tone frequency where each side hears it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from support.audio import tone_windows
from support.baresip import RATE, needs_baresip, running_baresip
from support.platform import DISPLAY_NUMBER, PHONE_NUMBER_ID, WABA_ID, Platform, running_platform
from support.sipp import free_port, needs_sipp

pytestmark = [pytest.mark.e2e, needs_sipp, needs_baresip, pytest.mark.timeout(120)]

USER = "15550003333"
PBX_TONE = 1000.0
USER_TONE = 600.0


@pytest.fixture
async def sip_platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    port = free_port("udp")
    async with running_platform(tmp_path, sip={"listen": [f"udp:127.0.0.1:{port}"]}) as platform:
        yield platform, port


async def create_trunk(platform: Platform, **fields: Any) -> str:
    body = {
        "type": "STATIC",
        "name": "PBX",
        "channelLimit": 4,
        "billingPackage": {"packageType": "METERED"},
        "codecs": ["PCMU"],
    } | fields
    response = await platform.api.post("/calls/1/sip-trunks", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def create_route(
    platform: Platform, criteria: list[dict[str, Any]], destinations: list[dict[str, Any]]
) -> str:
    created = await platform.api.post(
        "/callrouting/1/routes",
        json={"name": "sip trunking", "criteria": criteria, "destinations": destinations},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def route_sender_calls(platform: Platform) -> None:
    """The sender's inbound WhatsApp calls go to call routing."""
    sender = await platform.api.put(
        f"/admin/1/senders/{PHONE_NUMBER_ID}",
        json={
            "phoneNumberId": PHONE_NUMBER_ID,
            "displayPhoneNumber": DISPLAY_NUMBER,
            "wabaId": WABA_ID,
            "accessToken": "e2e-access-token",
            "appSecret": platform.app_secret,
            "verifyToken": "e2e-verify",
            "graphApiUrl": platform.emulator.graph_url,
            "inbound": {"action": "CALL_ROUTING"},
        },
    )
    assert sender.status_code == 200, sender.text


async def until(check: Callable[[], Awaitable[bool] | bool], seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.1)


async def test_a_pbx_calls_a_whatsapp_user_through_a_route_with_audio_both_ways(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    trunk = await create_trunk(platform, sourceHosts=["127.0.0.1"])
    await create_route(
        platform,
        [{"value": {"type": "SIP", "sipTrunkId": trunk}}],
        [{"type": "ENDPOINT", "value": {"type": "WHATSAPP", "from": DISPLAY_NUMBER}}],
    )
    user = platform.emulator.user(USER, name="Wa")
    user.answer.delay = 0.5
    user.auto_tone = USER_TONE
    await platform.grant_permission(USER)

    async with running_baresip(tmp_path / "pbx", "desk", tone_hz=PBX_TONE) as pbx:
        await pbx.command("dial", f"sip:{USER}@127.0.0.1:{port}")
        await pbx.wait_event("CALL_RINGING")
        incoming = await user.next_incoming()
        await pbx.wait_event("CALL_ESTABLISHED")
        await incoming.wait_connected()
        await until(lambda: tone_windows(incoming.heard_pcm(), PBX_TONE) >= 8)
        await asyncio.sleep(1.5)
        await incoming.hang_up()
        await pbx.wait_event("CALL_CLOSED")
    assert tone_windows(pbx.heard_pcm(), USER_TONE, rate=RATE) >= 8
