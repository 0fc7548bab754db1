"""SIP trunking through call routing, both ways: a PBX (baresip, sipp) calls a WhatsApp user (the Meta
emulator's real WebRTC peer) over a STATIC trunk, and a WhatsApp user's call is routed to the PBX.
Audio is checked by tone frequency where each side hears it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from support.audio import tone_windows
from support.baresip import RATE, needs_baresip, running_baresip
from support.platform import DISPLAY_NUMBER, PHONE_NUMBER_ID, Platform
from support.routing import create_route, route_sender_calls, until
from support.sip_trunks import create_trunk, sip_listening_platform
from support.sipp import free_port, needs_sipp, run_sipp, sipp_args, sipp_server

pytestmark = [pytest.mark.e2e, needs_sipp, needs_baresip, pytest.mark.timeout(120)]

USER = "15550003333"
PBX_TONE = 1000.0
USER_TONE = 600.0


@pytest.fixture
async def sip_platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    async with sip_listening_platform(tmp_path) as platform_and_port:
        yield platform_and_port


@pytest.mark.parametrize("hangs_up", ["user", "pbx"])
async def test_a_pbx_calls_a_whatsapp_user_through_a_route_with_audio_both_ways(
    sip_platform: tuple[Platform, int], tmp_path: Path, hangs_up: str
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
        if hangs_up == "user":
            await incoming.hang_up()
            await pbx.wait_event("CALL_CLOSED")
        else:
            await pbx.command("hangup")
            await incoming.wait_state("TERMINATED")
            await pbx.wait_event("CALL_CLOSED")
    assert tone_windows(pbx.heard_pcm(), USER_TONE, rate=RATE) >= 8


def refused_invite(user: str, caller: str, status: int, reason: str, extra_header: str = "") -> str:
    """A sipp UAC scenario: INVITE `user` as `caller`, expect `status` with a `Reason` matching `reason`."""
    header = f"\n      {extra_header}" if extra_header else ""
    check = (
        f'<action><ereg regexp="{reason}" search_in="hdr" header="Reason:" check_it="true" assign_to="1"/>'
        "</action>"
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="an INVITE refused with {status}">
  <send retrans="500">
    <![CDATA[

      INVITE sip:{user}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-inv-[call_number];rport
      From: pbx <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70{header}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="{status}">{check}</recv>
  <send>
    <![CDATA[

      ACK sip:{user}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-inv-[call_number];rport
      From: pbx <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="1"/>
</scenario>
"""


async def pbx_call_refused(
    port: int, tmp_path: Path, user: str, status: int, reason: str, *, caller: str = DISPLAY_NUMBER,
    extra_header: str = "",
) -> None:  # fmt: skip
    scenario = tmp_path / f"refused_{status}.xml"
    scenario.write_text(refused_invite(user, caller, status, reason, extra_header))
    args = ["-sf", str(scenario), *sipp_args("udp", free_port("udp"), seconds=40), f"127.0.0.1:{port}"]
    result = await run_sipp(args, tmp_path)
    assert result.returncode == 0, result.output


async def route_pbx_calls_to_whatsapp(platform: Platform, **destination: Any) -> str:
    trunk = await create_trunk(platform, sourceHosts=["127.0.0.1"])
    await create_route(
        platform,
        [{"value": {"type": "SIP", "sipTrunkId": trunk}}],
        [{"type": "ENDPOINT", "value": {"type": "WHATSAPP"}} | destination],
    )
    return trunk


async def test_a_user_without_call_permission_is_not_dialled_and_the_pbx_gets_403(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    user = platform.emulator.user(USER, name="Wa")
    await pbx_call_refused(port, tmp_path, USER, 403, "FORBIDDEN.*not granted call permission")
    assert user.calls == []


async def test_a_user_who_declines_gets_the_pbx_a_603(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    user = platform.emulator.user(USER, name="Wa")
    user.answer.mode = "decline"
    user.answer.delay = 0.3
    await platform.grant_permission(USER)
    await pbx_call_refused(port, tmp_path, USER, 603, "REJECTED")
    assert len(user.calls) == 1


async def test_a_user_who_does_not_answer_within_connect_timeout_gets_the_pbx_a_480(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform, connectTimeout=2)
    user = platform.emulator.user(USER, name="Wa")
    user.answer.mode = "no_answer"
    await platform.grant_permission(USER)
    await pbx_call_refused(port, tmp_path, USER, 480, "NO_ANSWER")


async def test_a_meta_error_gets_the_pbx_a_503_naming_metas_code(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    platform.emulator.user(USER, name="Wa")
    await platform.grant_permission(USER)
    platform.emulator.faults.fail_next("connect", status=400)
    await pbx_call_refused(port, tmp_path, USER, 503, "HTTP 400, code 1[)]")


RINGS_THEN_ANSWERED = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="100 at once, 180 without SDP, then 200">
  <send retrans="500">
    <![CDATA[

      INVITE sip:{user}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: pbx <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100"/>
  <recv response="180">
    <action>
      <ereg regexp="^ *0$" search_in="hdr" header="Content-Length:" check_it="true" assign_to="1"/>
    </action>
  </recv>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:{user}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: pbx <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="500"/>
  <send retrans="500">
    <![CDATA[

      BYE sip:{user}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: pbx <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <Reference variables="1"/>
</scenario>
"""


async def test_the_pbx_hears_180_when_the_whatsapp_user_rings_then_200(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    """100 Trying goes out at once; 180 (no SDP) only once Meta reports the user's phone ringing
    (sipp fails on any message out of this order), then 200 when the user answers."""
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    user = platform.emulator.user(USER, name="Wa")
    user.answer.delay = 1.0
    await platform.grant_permission(USER)
    scenario = tmp_path / "rings.xml"
    scenario.write_text(RINGS_THEN_ANSWERED.replace("{user}", USER).replace("{caller}", DISPLAY_NUMBER))
    args = ["-sf", str(scenario), *sipp_args("udp", free_port("udp"), seconds=40), f"127.0.0.1:{port}"]
    result = await run_sipp(args, tmp_path)
    assert result.returncode == 0, result.output
    [call] = user.calls
    await call.wait_state("TERMINATED")


async def test_a_call_meta_refuses_never_rang_so_the_pbx_gets_no_180(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    """The routed call was taken, but nothing rang: the PBX gets 100 and the final response only."""
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    platform.emulator.user(USER, name="Wa")
    await platform.grant_permission(USER)
    platform.emulator.faults.fail_next("connect", status=400)
    scenario = tmp_path / "no_ringing.xml"
    text = refused_invite(USER, DISPLAY_NUMBER, 503, "HTTP 400")
    scenario.write_text(text.replace('  <recv response="180" optional="true"/>\n', ""))
    assert "180" not in scenario.read_text()
    args = ["-sf", str(scenario), *sipp_args("udp", free_port("udp"), seconds=40), f"127.0.0.1:{port}"]
    result = await run_sipp(args, tmp_path)
    assert result.returncode == 0, result.output


async def test_a_caller_that_is_no_sender_is_refused_naming_it_before_meta_is_asked(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await route_pbx_calls_to_whatsapp(platform)
    user = platform.emulator.user(USER, name="Wa")
    await platform.grant_permission(USER)
    await pbx_call_refused(port, tmp_path, USER, 484, "'desk' is not a WhatsApp sender", caller="desk")
    assert user.calls == []


CALLER = "15550002222"


def busy_with_header(name: str, value: str) -> str:
    """A sipp UAS scenario: the INVITE must carry header `name` with exactly `value`; it answers 486."""
    check = (
        f'<action><ereg regexp="^ *{value}$" search_in="hdr" header="{name}:" check_it="true" assign_to="1"/>'
        "</action>"
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a busy extension that checks a header">
  <recv request="INVITE">{check}</recv>
  <send>
    <![CDATA[

      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <Reference variables="1"/>
</scenario>
"""


RINGING_UNTIL_CANCELLED = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="an extension that rings until the INVITE is cancelled">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="CANCEL"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[

      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [last_cseq_number] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


async def route_whatsapp_calls(platform: Platform, destinations: list[dict[str, Any]]) -> None:
    await create_route(
        platform,
        [{"to": DISPLAY_NUMBER, "value": {"type": "WHATSAPP", "from": "1555.*"}}],
        destinations,
    )
    await route_sender_calls(platform)


def sip_destination(trunk: str, username: str, **fields: Any) -> dict[str, Any]:
    value = {"type": "SIP", "sipTrunkId": trunk, "username": username}
    return {"type": "ENDPOINT", "value": value} | fields


@pytest.mark.parametrize("hangs_up", ["user", "pbx"])
async def test_a_whatsapp_call_is_routed_to_a_pbx_extension_with_audio_both_ways(
    sip_platform: tuple[Platform, int], tmp_path: Path, hangs_up: str
) -> None:
    platform, _ = sip_platform
    async with running_baresip(tmp_path / "pbx", "desk", tone_hz=PBX_TONE, auto_answer=True) as pbx:
        trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx.sip_port}"])
        await route_whatsapp_calls(platform, [sip_destination(trunk, "desk")])
        caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)
        caller.play_tone(USER_TONE)
        await pbx.wait_event("CALL_ESTABLISHED")
        await caller.wait_connected()
        await until(lambda: tone_windows(caller.heard_pcm(), PBX_TONE) >= 8)
        await asyncio.sleep(1.5)
        if hangs_up == "user":
            await caller.hang_up()
        else:
            await pbx.command("hangup")
            await caller.wait_state("TERMINATED")
        await pbx.wait_event("CALL_CLOSED")
    assert tone_windows(pbx.heard_pcm(), USER_TONE, rate=RATE) >= 8


@pytest.mark.parametrize("first", ["busy", "ringing"])
async def test_a_busy_or_unanswered_first_extension_fails_over_to_the_next(
    sip_platform: tuple[Platform, int], tmp_path: Path, first: str
) -> None:
    """The first destination answers 486 (and checks the custom header it was sent) or rings past
    `connectTimeout` (and is cancelled); the second one, baresip, takes the call."""
    platform, _ = sip_platform
    first_port = free_port("udp")
    scenario = tmp_path / "first.xml"
    if first == "busy":
        scenario.write_text(busy_with_header("X-Caller", f"wa-{CALLER}-to-{DISPLAY_NUMBER}"))
    else:
        scenario.write_text(RINGING_UNTIL_CANCELLED)
    async with (
        sipp_server(["-sf", str(scenario), *sipp_args("udp", first_port)], tmp_path) as extension,
        running_baresip(tmp_path / "pbx", "desk", tone_hz=PBX_TONE, auto_answer=True) as pbx,
    ):
        first_trunk = await create_trunk(platform, name="First", destinationHosts=[f"127.0.0.1:{first_port}"])
        trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx.sip_port}"])
        first_value = sip_destination(first_trunk, "sales", connectTimeout=2)
        first_value["value"] |= {"customHeaders": {"X-Caller": "wa-${from}-to-${to}"}}
        await route_whatsapp_calls(platform, [first_value, sip_destination(trunk, "desk")])
        caller = await platform.emulator.user(CALLER, name="Bo").call(PHONE_NUMBER_ID)
        await pbx.wait_event("CALL_ESTABLISHED")
        await caller.wait_connected()
        assert await extension.wait() == 0
        await caller.hang_up()
        await pbx.wait_event("CALL_CLOSED")


async def test_sip_criteria_match_the_invites_custom_headers(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    trunk = await create_trunk(platform, sourceHosts=["127.0.0.1"])
    headers = [{"headerName": "X-Team", "headerValue": "sal.*"}]
    await create_route(
        platform,
        [{"value": {"type": "SIP", "sipTrunkId": trunk, "headers": headers}}],
        [{"type": "ENDPOINT", "value": {"type": "WHATSAPP"}}],
    )
    user = platform.emulator.user(USER, name="Wa")
    user.answer.mode = "decline"
    user.answer.delay = 0.2
    await platform.grant_permission(USER)
    await pbx_call_refused(port, tmp_path, USER, 404, "no enabled route", extra_header="X-Team: support")
    assert user.calls == []
    await pbx_call_refused(port, tmp_path, USER, 603, "REJECTED", extra_header="X-Team: sales")
    assert len(user.calls) == 1
