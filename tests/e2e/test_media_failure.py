"""A call whose media never starts ends with a reason a person can act on, and fails only itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.platform import PHONE_NUMBER_ID, running_platform

pytestmark = pytest.mark.e2e


async def test_ice_failure_ends_the_call_with_a_readable_reason(tmp_path: Path) -> None:
    # Only peers in a network the user is not in are allowed: no candidate pair can answer.
    async with running_platform(tmp_path, media_remote_networks=["10.255.255.0/24"]) as platform:
        await platform.subscribe()
        call = await platform.emulator.user("15550001313").call(PHONE_NUMBER_ID)
        call_id = (await platform.app.wait_for("CALL_RECEIVED"))["callId"]
        answered = await platform.api.post(f"/calls/1/calls/{call_id}/answer", json={})
        assert answered.status_code == 200, answered.text
        failed = await platform.app.wait_for("CALL_FAILED", call_id, timeout=40)
        log = failed["properties"]["callLog"]
        assert log["errorCode"]["name"] == "MEDIA_FAILURE"
        assert log["errorCode"]["description"].startswith(
            "ICE failed: the peer offered no candidate this server may use"
        )
        assert log["hangupSource"] == "PLATFORM"
        record = (await platform.api.get(f"/calls/1/calls/{call_id}")).json()
        assert record["state"] == "FAILED"
        assert record["mediaDiagnostics"]["failure"].startswith("ICE failed")
        assert record["mediaDiagnostics"]["iceState"] == "failed"
        await call.wait_state("TERMINATED")
        assert (await platform.api.get("/health")).status_code == 200
