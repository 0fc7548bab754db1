"""Two `switchboard serve` processes on one PostgreSQL, one killed (`kill -9`) while it delivers events
to a slow app: every event arrives, each once by `X-Event-Id` (a repeat only of what the dead node was
sending when it died), in order per stream; the dead node's calls are ended by the live one (CDR,
CALL_FINISHED, terminate to Meta); the live node's calls go on; a call's API action and Meta's
webhook sent to the node that does not carry the call work."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select

from support.databases import empty_database
from support.platform import API_KEY, CONFIGURATION_ID, free_port
from support.server_process import ServerProcess
from switchboard.emulator import MetaEmulator
from switchboard.emulator._user import WhatsAppUser
from switchboard.store import Database
from switchboard.store.calls_api import WebhookOutboxRow

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SUBSCRIPTIONS = 17
"""Each call's three events (received, established, finished) go to each: 4 calls give 204 events."""
EVENTS = ["CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED", "CALL_FAILED"]
SLOW_S = 1.5
"""How long the app takes over a request while node-b is killed (less than the 2 s webhook timeout)."""


@dataclass(frozen=True)
class Sender:
    phone_number_id: str
    display: str
    waba_id: str


SENDERS = [Sender("100200300", "15550100200", "900800700"), Sender("100200301", "15550100201", "900800701")]


@dataclass
class SlowApp:
    """The application: records each request's `X-Event-Id` as it arrives, answers after a while."""

    port: int
    delay_s: float = 0.1
    received: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    """(X-Event-Id, subscription, event) in the order they arrived."""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    async def start(self) -> None:
        app = FastAPI()

        @app.post("/events")
        async def receive(request: Request) -> Response:
            event = json.loads(await request.body())
            self.received.append((int(request.headers["x-event-id"]), request.query_params["s"], event))
            await asyncio.sleep(self.delay_s)
            return Response(status_code=200)

        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", limit_concurrency=200)
        )
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


def node_config(
    tmp_path: Path, node_id: str, port: int, database_url: str, graphs: list[str], secret: str
) -> dict[str, Any]:
    return {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "node_id": node_id,
            "data_dir": str(tmp_path / node_id),
            "allow_private_urls": True,
            "media_remote_networks": ["127.0.0.0/8"],
            "heartbeat_interval_s": 0.5,
            "node_timeout_s": 3,
        },
        "database": {"url": database_url},
        "api": {
            "keys": [API_KEY],
            "webhook_timeout_s": 2,
            "webhook_lease_s": 5,
            "webhook_retry_base_delay_s": 0.2,
            "webhook_retry_max_delay_s": 1,
        },
        "whatsapp": {"graph_retries": 1, "graph_timeout_s": 2.0},
        "whatsapp.senders": [
            {
                "phone_number_id": sender.phone_number_id,
                "display_phone_number": sender.display,
                "waba_id": sender.waba_id,
                "access_token": "e2e-access-token",
                "app_secret": secret,
                "verify_token": "e2e-verify",
                "graph_api_url": graph,
                "inbound": {"action": "SUBSCRIPTION", "calls_configuration_id": CONFIGURATION_ID},
            }
            for sender, graph in zip(SENDERS, graphs, strict=True)
        ],
    }


async def subscribe(api: httpx.AsyncClient, app: SlowApp) -> None:
    await api.post("/calls/1/configurations", json={"id": CONFIGURATION_ID, "name": "nodes"})
    for i in range(SUBSCRIPTIONS):
        body = {
            "name": f"nodes {i}",
            "events": EVENTS,
            "criteria": [{"callsConfigurationId": CONFIGURATION_ID}],
            "profile": {"webhook": {"notifyUrl": f"{app.url}?s={i}"}},
        }
        assert (await api.post("/subscriptions/1/subscription/VOICE_VIDEO", json=body)).status_code == 201


async def call_of(api: httpx.AsyncClient, user: WhatsAppUser) -> dict[str, Any]:
    """The server's call from `user` (read from the shared database, through either node)."""
    async with asyncio.timeout(30):
        while True:
            calls = (await api.get("/calls/1/calls", params={"size": 100})).json()["results"]
            found = [c for c in calls if user.wa_id in json.dumps(c.get("endpoint", {}))]
            if found:
                return found[0]
            await asyncio.sleep(0.1)


async def call_state(api: httpx.AsyncClient, call_id: str) -> str:
    state: str = (await api.get(f"/calls/1/calls/{call_id}")).json()["state"]
    return state


async def until_state(api: httpx.AsyncClient, call_id: str, state: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while await call_state(api, call_id) != state:
            await asyncio.sleep(0.1)


async def outbox(db: Database) -> tuple[list[int], int, list[int]]:
    """Every row id, how many are still pending, and the rows node-b holds a lease on."""
    pending = WebhookOutboxRow.delivered_at.is_(None) & WebhookOutboxRow.failed_at.is_(None)
    async with db.session() as s:
        ids = list(await s.scalars(select(WebhookOutboxRow.id).order_by(WebhookOutboxRow.id)))
        waiting = (await s.execute(select(func.count()).where(pending))).scalar_one()
        held = list(
            await s.scalars(
                select(WebhookOutboxRow.id).where(pending, WebhookOutboxRow.lease_owner == "node-b")
            )
        )
    return ids, waiting, held


async def test_two_nodes_one_killed_while_delivering(tmp_path: Path) -> None:
    secret = secrets.token_hex(16)
    port_a, port_b = free_port(), free_port()
    meta_a = MetaEmulator(f"http://127.0.0.1:{port_a}/webhooks/whatsapp", recording_dir=tmp_path / "ma")
    meta_b = MetaEmulator(f"http://127.0.0.1:{port_b}/webhooks/whatsapp", recording_dir=tmp_path / "mb")
    for meta, sender in zip((meta_a, meta_b), SENDERS, strict=True):
        meta.add_business_number(
            sender.phone_number_id, sender.display, sender.waba_id, "e2e-access-token", secret
        )
    app = SlowApp(free_port())
    async with empty_database("postgresql", tmp_path) as url, meta_a, meta_b:
        graphs = [meta_a.graph_url, meta_b.graph_url]
        node_a = ServerProcess(
            node_config(tmp_path, "node-a", port_a, url, graphs, secret), tmp_path, name="a"
        )
        node_b = ServerProcess(
            node_config(tmp_path, "node-b", port_b, url, graphs, secret), tmp_path, name="b"
        )
        await app.start()
        await node_a.start()
        await node_b.start()
        key = {"Authorization": f"App {API_KEY}"}
        api_a = httpx.AsyncClient(base_url=node_a.url, headers=key, timeout=30)
        api_b = httpx.AsyncClient(base_url=node_b.url, headers=key, timeout=30)
        db = Database(url)
        try:
            await subscribe(api_a, app)
            users_a = [meta_a.user(f"1555030{i:04d}") for i in range(2)]
            users_b = [meta_b.user(f"1555040{i:04d}") for i in range(2)]
            phones = [await user.call(SENDERS[0].phone_number_id) for user in users_a]
            phones += [await user.call(SENDERS[1].phone_number_id) for user in users_b]
            on_a = [(await call_of(api_a, user))["id"] for user in users_a]
            on_b = [(await call_of(api_a, user))["id"] for user in users_b]
            for call_id in on_a:  # sent to the node that does not carry the call: forwarded
                answer = await api_b.post(f"/calls/1/calls/{call_id}/answer", json={})
                assert answer.status_code == 200, answer.text
            await asyncio.gather(*(phone.wait_connected(timeout=30) for phone in phones[:2]))

            # Meta's terminate for a call of node-a lands on node-b: node-a ends the call.
            meta_a.webhooks.url = f"{node_b.url}/webhooks/whatsapp"
            await phones[1].hang_up()
            await until_state(api_a, on_a[1], "FINISHED")
            meta_a.webhooks.url = f"{node_a.url}/webhooks/whatsapp"

            app.delay_s = SLOW_S
            for call_id in on_b:
                assert (await api_b.post(f"/calls/1/calls/{call_id}/answer", json={})).status_code == 200
            async with asyncio.timeout(30):
                while not (await outbox(db))[2]:
                    await asyncio.sleep(0.02)
            await node_b.kill()
            _, waiting, in_flight = await outbox(db)
            assert waiting > 0 and in_flight, "node-b was killed with nothing in hand"
            app.delay_s = 0.1

            for call_id in on_b:  # node-b's calls are ended by node-a
                await until_state(api_a, call_id, "FINISHED")
                cdr = (await api_a.get(f"/calls/1/calls/{call_id}/history")).json()
                assert "server" in cdr["errorCode"]["description"], cdr
            await asyncio.gather(*(phone.wait_state("TERMINATED", timeout=30) for phone in phones[2:]))
            assert all(phone.answered for phone in phones[2:]), "node-b's calls were never up"
            assert await call_state(api_a, on_a[0]) == "ESTABLISHED", "node-a's live call was disturbed"
            assert not phones[0].ended
            assert (await api_a.post(f"/calls/1/calls/{on_a[0]}/hangup", json={})).status_code == 200
            await phones[0].wait_state("TERMINATED", timeout=30)

            async with asyncio.timeout(60):
                while (await outbox(db))[1] or len(app.received) < 12 * SUBSCRIPTIONS:
                    await asyncio.sleep(0.2)
            ids, _, _ = await outbox(db)
            assert len(ids) == 4 * 3 * SUBSCRIPTIONS
            times = Counter(event_id for event_id, _, _ in app.received)
            assert set(times) == set(ids), "an event was lost"
            repeated = {event_id for event_id, n in times.items() if n > 1}
            assert repeated <= set(in_flight), f"repeats beyond what node-b was sending: {repeated}"
            order: dict[tuple[str, str], list[str]] = defaultdict(list)
            first_seen: set[int] = set()
            for event_id, subscription, event in app.received:
                if event_id not in first_seen:
                    first_seen.add(event_id)
                    order[subscription, event["callId"]].append(event["type"])
            for stream, types in order.items():
                assert types == ["CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED"], (stream, types)
        finally:
            await db.close()
            await api_a.aclose()
            await api_b.aclose()
            await node_a.stop()
            await node_b.stop()
            await app.stop()
