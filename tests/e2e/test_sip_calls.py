"""SIP calls through a running server and a STATIC trunk, with sipp as the PBX."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.platform import CONFIGURATION_ID, Platform, running_platform
from support.sip_trunks import create_trunk, sip_listening_platform
from support.sipp import free_port, needs_sipp, run_sipp, sipp_args, sipp_server, wait_listening

pytestmark = [pytest.mark.e2e, needs_sipp, pytest.mark.timeout(120)]

SCENARIOS = Path(__file__).parents[1] / "integration" / "channels" / "sip" / "scenarios"


@pytest.fixture
async def sip_platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    async with sip_listening_platform(tmp_path) as platform_and_port:
        yield platform_and_port


async def test_an_app_calls_a_pbx_extension_over_a_trunk_and_hangs_up(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, _ = sip_platform
    await platform.subscribe()
    pbx_port = free_port("udp")
    trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx_port}"])
    async with sipp_server(["-sn", "uas", *sipp_args("udp", pbx_port)], tmp_path) as pbx:
        await wait_listening("udp", pbx_port)
        created = await platform.api.post(
            "/calls/1/calls",
            json={
                "endpoint": {"type": "SIP", "sipTrunkId": trunk, "username": "bob"},
                "from": "alice",
                "callsConfigurationId": CONFIGURATION_ID,
                "connectTimeout": 30,
            },
        )
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]
        await platform.app.wait_for("CALL_ESTABLISHED", call_id)
        hangup = await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
        assert hangup.status_code == 200, hangup.text
        await platform.app.wait_for("CALL_FINISHED", call_id)
        assert await pbx.wait() == 0
    assert platform.app.types(call_id)[:2] == ["CALL_STARTED", "CALL_RINGING"]


async def test_a_busy_extension_fails_the_call_as_busy(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, _ = sip_platform
    await platform.subscribe()
    pbx_port = free_port("udp")
    trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx_port}"])
    async with sipp_server(["-sf", str(SCENARIOS / "busy_uas.xml"), *sipp_args("udp", pbx_port)], tmp_path):
        created = await platform.api.post(
            "/calls/1/calls",
            json={
                "endpoint": {"type": "SIP", "sipTrunkId": trunk, "username": "bob"},
                "from": "alice",
                "callsConfigurationId": CONFIGURATION_ID,
            },
        )
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]
        failed = await platform.app.wait_for("CALL_FAILED", call_id)
    log = failed["properties"]["callLog"]
    assert log["state"] == "BUSY" and log["errorCode"]["name"] == "BUSY"
    assert log["errorCode"]["description"] == "486 Busy Here"


async def test_an_invite_from_a_host_of_no_trunk_gets_403(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    await create_trunk(platform, sourceHosts=["192.0.2.10"])
    args = ["-sf", str(SCENARIOS / "forbidden.xml"), *sipp_args("udp", free_port("udp")), f"127.0.0.1:{port}"]
    result = await run_sipp(args, tmp_path)
    assert result.returncode == 0, result.output
    listed = await platform.api.get("/calls/1/calls")
    assert listed.json()["results"] == []


async def test_a_registered_trunk_pbx_registers_with_the_issued_credentials(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, port = sip_platform
    created = await platform.api.post(
        "/calls/1/sip-trunks",
        json={
            "type": "REGISTERED",
            "name": "Branch",
            "channelLimit": 2,
            "billingPackage": {"packageType": "METERED"},
        },
    )
    assert created.status_code == 202, created.text
    trunk = created.json()
    path = f"/calls/1/sip-trunks/{trunk['id']}/status"
    assert (await platform.api.get(path)).json()["registrationStatus"] == "UNREGISTERED"
    username, password = trunk["username"], trunk["password"]
    scenario = [
        "-sf",
        str(SCENARIOS / "register_with_keys.xml"),
        "-s",
        username,
        "-au",
        username,
        "-ap",
        password,
    ]
    wrong = [*scenario[:-1], "not-the-password"]
    refused = await run_sipp(
        [*wrong, *sipp_args("udp", free_port("udp"), seconds=5), f"127.0.0.1:{port}"], tmp_path
    )
    assert refused.returncode != 0
    assert (await platform.api.get(path)).json()["registrationStatus"] == "UNREGISTERED"
    result = await run_sipp([*scenario, *sipp_args("udp", free_port("udp")), f"127.0.0.1:{port}"], tmp_path)
    assert result.returncode == 0, result.output
    assert (await platform.api.get(path)).json()["registrationStatus"] == "REGISTERED"


async def dial_extension(platform: Platform, trunk: str) -> str:
    created = await platform.api.post(
        "/calls/1/calls",
        json={
            "endpoint": {"type": "SIP", "sipTrunkId": trunk, "username": "bob"},
            "from": "alice",
            "callsConfigurationId": CONFIGURATION_ID,
            "connectTimeout": 30,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_keys_the_pbx_sends_in_sip_info_are_captured(
    sip_platform: tuple[Platform, int], tmp_path: Path
) -> None:
    platform, _ = sip_platform
    await platform.subscribe()
    pbx_port = free_port("udp")
    trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx_port}"])
    scenario = ["-sf", str(SCENARIOS / "info_dtmf_uas.xml"), *sipp_args("udp", pbx_port)]
    async with sipp_server(scenario, tmp_path) as pbx:
        call_id = await dial_extension(platform, trunk)
        await platform.app.wait_for("CALL_ESTABLISHED", call_id)
        capture = await platform.api.post(
            f"/calls/1/calls/{call_id}/capture/dtmf",
            json={"maxLength": 5, "timeout": 20000, "terminator": "#"},
        )
        assert capture.status_code == 200, capture.text
        captured = await platform.app.wait_for("DTMF_CAPTURED", call_id)
        assert captured["properties"]["dtmf"] == "4"
        await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
        await platform.app.wait_for("CALL_FINISHED", call_id)
        assert await pbx.wait() == 0


async def test_public_address_is_advertised_in_via_contact_and_sdp(tmp_path: Path) -> None:
    port = free_port("udp")
    sip = {"listen": [f"udp:127.0.0.1:{port}"], "public_address": "203.0.113.7"}
    async with running_platform(tmp_path, sip=sip) as platform:
        await platform.subscribe()
        pbx_port = free_port("udp")
        trunk = await create_trunk(platform, destinationHosts=[f"127.0.0.1:{pbx_port}"])
        scenario = ["-sf", str(SCENARIOS / "public_address_uas.xml"), *sipp_args("udp", pbx_port)]
        async with sipp_server(scenario, tmp_path) as pbx:
            call_id = await dial_extension(platform, trunk)
            await platform.app.wait_for("CALL_ESTABLISHED", call_id)
            await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
            await platform.app.wait_for("CALL_FINISHED", call_id)
            assert await pbx.wait() == 0
