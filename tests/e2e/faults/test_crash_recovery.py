"""`kill -9` during 20 live calls, then a restart: every call ends with a CDR and CALL_FINISHED, Meta
gets a terminate for each, and the app gets every event once (by `X-Event-Id`)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from support.faults import deliveries, server_config, subscribe
from support.platform import (
    API_KEY,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    WABA_ID,
    WebhookApp,
    free_port,
)
from support.server_process import ServerProcess
from switchboard.emulator import MetaEmulator

pytestmark = pytest.mark.e2e
CALLS = 20


async def test_kill_9_during_live_calls_then_restart(tmp_path: Path) -> None:
    app_secret = secrets.token_hex(16)
    port = free_port()
    emulator = MetaEmulator(
        f"http://127.0.0.1:{port}/webhooks/whatsapp",
        recording_dir=tmp_path / "heard",
        webhook_retry_delays=(0.2, 0.5, 1.0, 2.0, 4.0),
    )
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, "e2e-access-token", app_secret)
    app = WebhookApp(free_port())
    async with emulator:
        server = ServerProcess(
            server_config(tmp_path / "data", port, emulator.graph_url, app_secret), tmp_path
        )
        await app.start()
        await server.start()
        api = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"App {API_KEY}"}, timeout=30)
        try:
            await subscribe(api, app)
            users = [emulator.user(f"1555010{i:04d}", name=f"U{i}") for i in range(CALLS)]
            user_calls = [await user.call(PHONE_NUMBER_ID) for user in users]
            call_ids = []
            for _ in range(CALLS):
                received = await app.wait_for("CALL_RECEIVED", exclude=frozenset(call_ids), timeout=60)
                call_ids.append(received["callId"])
                answer = await api.post(f"/calls/1/calls/{received['callId']}/answer", json={})
                assert answer.status_code == 200, answer.text
            for call_id in call_ids:
                await app.wait_for("CALL_ESTABLISHED", call_id, timeout=60)
            await asyncio.gather(*(call.wait_connected(timeout=60) for call in user_calls))

            await server.kill()
            await server.start()

            for call_id in call_ids:
                finished = await app.wait_for("CALL_FINISHED", call_id, timeout=60)
                assert "server stopped" in finished["properties"]["callLog"]["errorCode"]["description"]
                log = await api.get(f"/calls/1/calls/{call_id}/history")
                assert log.status_code == 200 and log.json()["state"] == "FINISHED", log.text
            await asyncio.gather(*(call.wait_state("TERMINATED", timeout=60) for call in user_calls))
            terminated = {
                body.get("call_id")
                for method, _path, body in emulator.requests
                if method == "POST" and body.get("action") == "terminate"
            }
            assert {call.call_id for call in user_calls} <= terminated, "Meta was not told every call ended"
            live = await api.get("/calls/1/calls")
            assert live.json()["results"] == [], "calls still listed as live"
            seen = deliveries(app)
            for call_id in call_ids:
                for event_type in ("CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED"):
                    assert len(seen[event_type, call_id]) == 1, (
                        event_type,
                        call_id,
                        seen[event_type, call_id],
                    )
        finally:
            await api.aclose()
            await server.stop()
            await app.stop()


async def test_shutdown_is_bounded_when_meta_does_not_answer(tmp_path: Path) -> None:
    app_secret = secrets.token_hex(16)
    port = free_port()
    emulator = MetaEmulator(
        f"http://127.0.0.1:{port}/webhooks/whatsapp",
        recording_dir=tmp_path / "heard",
        webhook_retry_delays=(0.2, 0.5, 1.0),
    )
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, "e2e-access-token", app_secret)
    app = WebhookApp(free_port())
    async with emulator:
        server = ServerProcess(
            server_config(tmp_path / "data", port, emulator.graph_url, app_secret), tmp_path
        )
        await app.start()
        await server.start()
        api = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"App {API_KEY}"}, timeout=30)
        try:
            await subscribe(api, app)
            user_calls = [await emulator.user(f"1555020{i:04d}").call(PHONE_NUMBER_ID) for i in range(2)]
            answered: list[str] = []
            for _ in user_calls:
                received = await app.wait_for("CALL_RECEIVED", exclude=frozenset(answered), timeout=30)
                answered.append(received["callId"])
                await api.post(f"/calls/1/calls/{received['callId']}/answer", json={})
            await asyncio.gather(*(call.wait_connected(timeout=30) for call in user_calls))
            emulator.faults.hang_next("terminate", 20.0, count=4)

            loop = asyncio.get_running_loop()
            started = loop.time()
            await server.stop(timeout=60)
            took = loop.time() - started
            assert took < 15, f"shutdown took {took:.0f} s"

            emulator.faults.clear()
            await server.start()
            await asyncio.gather(*(call.wait_state("TERMINATED", timeout=60) for call in user_calls))
        finally:
            await api.aclose()
            await server.stop()
            await app.stop()
