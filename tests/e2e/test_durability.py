"""Nothing is lost: events wait in the outbox while the app is down, and a restart keeps finished calls
and undelivered events."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from support.platform import (
    API_KEY,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    WABA_ID,
    Platform,
    WebhookApp,
    free_port,
    platform_settings,
    running_platform,
)
from switchboard.emulator import MetaEmulator
from switchboard.server import Server

pytestmark = pytest.mark.e2e
FAST_RETRY = {"webhook_retry_max_delay_s": 4.0, "webhook_timeout_s": 2.0}
CALL_EVENTS = ["CALL_RECEIVED", "CALL_PRE_ESTABLISHED", "CALL_ESTABLISHED", "SAY_FINISHED", "CALL_FINISHED"]


async def take_call(platform: Platform, call_id: str) -> None:
    for action in ("pre-answer", "answer"):
        response = await platform.api.post(f"/calls/1/calls/{call_id}/{action}", json={})
        assert response.status_code == 200, response.text


async def received_call_id(platform: Platform) -> str:
    for _ in range(200):
        calls = (await platform.api.get("/calls/1/calls")).json()["results"]
        if calls:
            return str(calls[0]["id"])
        await asyncio.sleep(0.05)
    raise AssertionError("the call never reached the server")


async def test_app_down_for_a_minute_gets_every_event_in_order(tmp_path: Path) -> None:
    async with running_platform(tmp_path, api=FAST_RETRY) as platform:
        await platform.subscribe(events=CALL_EVENTS)
        platform.app.status = 503
        call = await platform.emulator.user("15550005555").call(PHONE_NUMBER_ID)
        call_id = await received_call_id(platform)
        await take_call(platform, call_id)
        await call.wait_connected()
        await platform.api.post(
            f"/calls/1/calls/{call_id}/say", json={"text": "Still here.", "language": "en"}
        )
        await asyncio.sleep(60)
        await platform.api.post(f"/calls/1/calls/{call_id}/hangup", json={})
        assert platform.app.events == [], "events were delivered while the app answered 503"
        platform.app.status = 200
        await platform.app.wait_for("CALL_FINISHED", call_id, timeout=30)
        assert platform.app.types(call_id) == CALL_EVENTS


async def test_restart_keeps_finished_calls_and_undelivered_events(tmp_path: Path) -> None:
    app_secret = secrets.token_hex(16)
    port = free_port()
    app = WebhookApp(free_port())
    emulator = MetaEmulator(f"http://127.0.0.1:{port}/webhooks/whatsapp", recording_dir=tmp_path / "heard")
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, "e2e-access-token", app_secret)
    headers = {"Authorization": f"App {API_KEY}"}
    async with emulator:
        settings = platform_settings(tmp_path, port, emulator.graph_url, app_secret, FAST_RETRY)
        async with Server(settings) as server, httpx.AsyncClient(base_url=server.url, headers=headers) as api:
            platform = Platform(server, emulator, app, api, settings, app_secret)
            await platform.subscribe(events=CALL_EVENTS)
            call = await emulator.user("15550006666").call(PHONE_NUMBER_ID)
            call_id = await received_call_id(platform)
            await take_call(platform, call_id)
            await call.wait_connected()
            await call.hang_up()
            for _ in range(200):
                if (await api.get(f"/calls/1/calls/{call_id}")).json()["state"] == "FINISHED":
                    break
                await asyncio.sleep(0.05)
        await app.start()
        try:
            async with (
                Server(settings) as server,
                httpx.AsyncClient(base_url=server.url, headers=headers) as api,
            ):
                record = (await api.get(f"/calls/1/calls/{call_id}")).json()
                assert record["state"] == "FINISHED"
                finished = await app.wait_for("CALL_FINISHED", call_id, timeout=30)
                assert isinstance(finished["properties"]["callLog"]["duration"], int)
                assert [t for t in app.types(call_id) if t != "SAY_FINISHED"] == [
                    "CALL_RECEIVED",
                    "CALL_PRE_ESTABLISHED",
                    "CALL_ESTABLISHED",
                    "CALL_FINISHED",
                ]
        finally:
            await app.stop()
