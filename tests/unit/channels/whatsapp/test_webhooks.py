"""Meta's webhook items are durable jobs: answered at once, processed right after, and processed again
(not skipped) when processing failed — here, when the Calls API could not store the call's first event."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from fastapi import FastAPI

from support.control_rig import Rig, running_rig
from support.fakes import InMemoryPermissionRepository, settle
from switchboard.channels.whatsapp.graph import GraphClient
from switchboard.channels.whatsapp.permissions import WhatsAppPermissions
from switchboard.channels.whatsapp.senders import Sender, SenderDirectory
from switchboard.channels.whatsapp.webhooks import ITEM_KIND, WhatsAppWebhooks
from switchboard.core.events import CallEvent, CallReceived
from switchboard.core.models import InboundAction, InboundTarget
from switchboard.core.nodes import CallOwner
from switchboard.core.ports import ChannelRecord
from switchboard.emulator import sign

SECRET = "app-secret"
SENDER = Sender("100200300", "15550100200", "waba", "token", SECRET, "verify", "http://graph.test",
                InboundTarget(InboundAction.SUBSCRIPTION, "app"))  # fmt: skip


class Records:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Mapping[str, Any]] = {}

    async def list(self, kind: str) -> Sequence[ChannelRecord]:
        return [ChannelRecord(k, key, data) for (k, key), data in self.items.items() if k == kind]

    async def get(self, kind: str, key: str) -> ChannelRecord | None:
        data = self.items.get((kind, key))
        return ChannelRecord(kind, key, data) if data is not None else None

    async def save(self, kind: str, key: str, data: Mapping[str, Any]) -> None:
        self.items[kind, key] = data

    async def delete(self, kind: str, key: str) -> bool:
        return self.items.pop((kind, key), None) is not None


def connect(wacid: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100200", "phone_number_id": "100200300"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "447700900123"}],
        "calls": [
            {
                "id": wacid,
                "from": "447700900123",
                "to": "15550100200",
                "event": "connect",
                "timestamp": "1700000000",
                "direction": "USER_INITIATED",
                "session": {"sdp_type": "offer", "sdp": "v=0\r\n"},
            }
        ],
    }
    changes = [{"field": "calls", "value": value}]
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": changes}]}
    ).encode()


async def test_an_item_whose_processing_failed_is_processed_again() -> None:
    async with running_rig() as rig:
        await check_processed_again(rig)


async def check_processed_again(rig: Rig) -> None:
    senders = SenderDirectory(Records())
    await senders.save(SENDER)
    graph = GraphClient(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))))
    permissions = WhatsAppPermissions(graph, senders, InMemoryPermissionRepository())
    webhooks = WhatsAppWebhooks(rig.control, senders, rig.control.jobs, permissions)
    rig.control.jobs.register(webhooks)
    stored: list[str] = []
    failures = [OSError("the database is down")]

    async def outbox(event: CallEvent) -> None:
        if failures:
            raise failures.pop()
        stored.append(type(event).__name__)

    rig.bus.subscribe(outbox, durable=True)
    app = FastAPI()
    app.include_router(webhooks.router)
    body = connect("wacid.1")
    headers = {"X-Hub-Signature-256": sign(body, SECRET), "Content-Type": "application/json"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://server") as meta:
        assert (await meta.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
        await settle()
        assert stored == [], "the first attempt could not store CALL_RECEIVED"
        assert rig.jobs.states() == [(ITEM_KIND, "call:wacid.1:connect", "pending")]

        rig.clock.advance(1.5)
        await rig.control.jobs.run_due()
        await settle()
        assert stored == ["CallReceived"], "processed again, not skipped"
        assert rig.jobs.states() == [(ITEM_KIND, "call:wacid.1:connect", "done")]
        assert len(rig.events.find(CallReceived)) == 1, "one call, not two"

        again = await meta.post("/webhooks/whatsapp", content=body, headers=headers)
        assert again.status_code == 200
        await settle()
        assert len(rig.events.find(CallReceived)) == 1, "Meta's redelivery is not a second call"


class Owners:
    """Node-b carries wacid.b (alive); node-c carried wacid.c and stopped."""

    node_id = "node-a"

    async def of_call(self, call_id: str) -> CallOwner | None:
        return None

    async def of_peer_call(self, peer_call_id: str, call_hint: str | None) -> CallOwner | None:
        return {
            "wacid.b": CallOwner("node-b", "http://10.0.0.2:8080", alive=True),
            "wacid.c": CallOwner("node-c", "http://10.0.0.3:8080", alive=False),
        }.get(peer_call_id)

    async def of_dialog(self, dialog_id: str) -> CallOwner | None:
        return None


async def test_an_item_about_a_call_of_another_node_is_handed_to_that_node() -> None:
    async with running_rig() as rig:
        senders = SenderDirectory(Records())
        await senders.save(SENDER)
        graph = GraphClient(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))))
        permissions = WhatsAppPermissions(graph, senders, InMemoryPermissionRepository())
        webhooks = WhatsAppWebhooks(rig.control, senders, rig.control.jobs, permissions, owners=Owners())
        rig.control.jobs.register(webhooks)
        app = FastAPI()
        app.include_router(webhooks.router)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://server") as meta:
            for wacid in ("wacid.b", "wacid.c", "wacid.new"):
                body = connect(wacid)
                headers = {"X-Hub-Signature-256": sign(body, SECRET), "Content-Type": "application/json"}
                assert (
                    await meta.post("/webhooks/whatsapp", content=body, headers=headers)
                ).status_code == 200
            await settle()
        assert rig.jobs.states() == [
            (ITEM_KIND, "call:wacid.b:connect", "handed to node-b"),
            (ITEM_KIND, "call:wacid.c:connect", "pending"),
            (ITEM_KIND, "call:wacid.new:connect", "done"),
        ], "node-b's call goes to node-b; the dead node's waits until its calls are ended; a new one is here"
        assert rig.jobs.jobs[2]["error"] and "node-c" in rig.jobs.jobs[2]["error"]
