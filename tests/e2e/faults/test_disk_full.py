"""The disk full for a while, under live calls and Meta webhooks: the server keeps running, API requests
that must store something answer 503 at once, Meta webhook items it could not store are answered non-2xx
(so Meta delivers them again), and once space is freed every call ends with a CDR and the app gets every
event, once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.faults import deliveries, server_config, subscribe
from support.filesystems import fill, small_filesystem
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
from switchboard.emulator._user import UserCall

pytestmark = pytest.mark.e2e


def meta_attempts(emulator: MetaEmulator, call_id: str, event: str) -> list[int | None]:
    """The HTTP statuses the server answered to Meta's deliveries of `event` for `call_id`."""
    statuses: list[int | None] = []
    for delivery in emulator.webhooks.deliveries:
        for entry in delivery.document["entry"]:
            for change in entry["changes"]:
                for call in change["value"].get("calls", []):
                    if call["id"] == call_id and call["event"] == event:
                        statuses += delivery.attempts
    return statuses


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def answer_next(api: httpx.AsyncClient, app: WebhookApp, known: list[str]) -> str:
    received = await app.wait_for("CALL_RECEIVED", exclude=frozenset(known), timeout=60)
    known.append(received["callId"])
    response = await api.post(f"/calls/1/calls/{received['callId']}/answer", json={})
    assert response.status_code == 200, response.text
    return str(received["callId"])


async def test_disk_full_for_a_while(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "data", megabytes=24) as data:
        await run_disk_full(tmp_path, data)


async def run_disk_full(tmp_path: Path, data: Path) -> None:
    app_secret = secrets.token_hex(16)
    port = free_port()
    emulator = MetaEmulator(
        f"http://127.0.0.1:{port}/webhooks/whatsapp",
        recording_dir=tmp_path / "heard",
        webhook_retry_delays=(0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0),
    )
    emulator.add_business_number(PHONE_NUMBER_ID, DISPLAY_NUMBER, WABA_ID, "e2e-access-token", app_secret)
    app = WebhookApp(free_port())
    async with emulator:
        server = ServerProcess(server_config(data, port, emulator.graph_url, app_secret), tmp_path)
        await app.start()
        await server.start()
        api = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"App {API_KEY}"}, timeout=10)
        try:
            await subscribe(api, app)
            users = [emulator.user(f"155503{i:05d}", name=f"D{i}") for i in range(3)]
            call_ids: list[str] = []
            live: list[UserCall] = []
            for user in users[:2]:
                live.append(await user.call(PHONE_NUMBER_ID))
                await answer_next(api, app, call_ids)
            for call_id in call_ids:
                await app.wait_for("CALL_ESTABLISHED", call_id, timeout=60)
            await asyncio.gather(*(call.wait_connected(timeout=60) for call in live))
            hung_up_by_api = call_ids[1]

            filler = fill(data)
            # the first writes may still fit in space SQLite holds already; a write that needs more fails
            refused: httpx.Response | None = None
            for i in range(3000):
                response = await api.post("/calls/1/configurations", json={"id": f"full-{i}", "name": "x"})
                if response.status_code != 201:
                    refused = response
                    break
            assert refused is not None, "the database never ran out of space"
            assert refused.status_code == 503, refused.text
            error = refused.json()["requestError"]["serviceException"]
            assert error["messageId"] == "SERVICE_UNAVAILABLE" and "storage" in error["text"], error

            # while full: a user calls, the user of one live call hangs up, the API hangs up the other
            new_call = asyncio.create_task(users[2].call(PHONE_NUMBER_ID))
            hang_up = asyncio.create_task(live[0].hang_up())

            async def refused_twice(call_id: str, event: str) -> bool:
                statuses = meta_attempts(emulator, call_id, event)
                return sum(1 for s in statuses if s is not None and s >= 500) >= 2

            # Meta's deliveries, and its redeliveries while the disk stays full, are answered non-2xx
            await until(lambda: refused_twice(live[0].call_id, "terminate"), 30, "terminate refused")
            await until(lambda: refused_twice(users[2].calls[0].call_id, "connect"), 30, "connect refused")
            # the call is hung up (Meta is told, media closes) but its CDR cannot be stored yet: a 503,
            # and the call's end is stored once space is freed
            hangup = await api.post(f"/calls/1/calls/{hung_up_by_api}/hangup", json={})
            assert hangup.status_code == 503, hangup.text
            assert (await api.get("/health")).status_code == 200

            filler.unlink()
            await asyncio.wait_for(asyncio.gather(new_call, hang_up), 60)
            for call_id, event in ((live[0].call_id, "terminate"), (users[2].calls[0].call_id, "connect")):
                assert meta_attempts(emulator, call_id, event)[-1] == 200, (call_id, event)

            new_id = await answer_next(api, app, call_ids)
            await app.wait_for("CALL_ESTABLISHED", new_id, timeout=60)
            response = await api.post(f"/calls/1/calls/{new_id}/hangup", json={})
            assert response.status_code == 200, response.text
            for call_id in call_ids:
                await app.wait_for("CALL_FINISHED", call_id, timeout=60)
                history = await api.get(f"/calls/1/calls/{call_id}/history")
                assert history.status_code == 200 and history.json()["state"] == "FINISHED", history.text
            await asyncio.gather(*(call.wait_state("TERMINATED", timeout=60) for call in users_calls(users)))
            assert (await api.get("/calls/1/calls")).json()["results"] == [], "calls still listed as live"
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


def users_calls(users: list[Any]) -> list[UserCall]:
    return [call for user in users for call in user.calls]
