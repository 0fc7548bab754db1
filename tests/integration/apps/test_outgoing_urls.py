"""Every outgoing request of a running server (webhook deliveries, audio URLs, the Graph API) obeys the
URL policy where it connects: a name that was public when checked and private when dialled (DNS
rebinding) never reaches the private address."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from support.calls_api_harness import SENDER_ID, Harness, running_harness, running_receiver
from support.network import RecordingNetwork, ScriptedResolver
from switchboard.store.calls_api import WebhookOutboxRow

PUBLIC = "93.184.216.34"


async def settled_rows(h: Harness, count: int) -> dict[str, WebhookOutboxRow]:
    """The outbox rows by URL host, once `count` of them were delivered or have failed once."""
    async with asyncio.timeout(10):
        while True:
            async with h.db.session() as s:
                rows = list(await s.scalars(select(WebhookOutboxRow)))
            done = [r for r in rows if r.delivered_at is not None or r.last_error]
            if len(done) >= count:
                return {r.url.split("/")[2].split(":")[0]: r for r in rows}
            await asyncio.sleep(0.02)


async def test_rebinding_names_never_reach_the_private_address(tmp_path: Path) -> None:
    resolver = ScriptedResolver(
        {
            # checked when the subscription is made and again before each delivery; then dialled
            "rebinding.example": [[PUBLIC], [PUBLIC], ["127.0.0.1"]],
            "public.example": [[PUBLIC]],
            "audio.example": [[PUBLIC], ["127.0.0.1"]],
            "graph.example": [["127.0.0.1"]],
        }
    )
    network = RecordingNetwork(loopback=True)
    async with (
        running_receiver() as (receiver, url),
        running_harness(
            tmp_path,
            network=(resolver, network),
            allow_private_urls=False,
            graph_api_url="http://graph.example:9",
        ) as h,
    ):
        port = int(url.split(":")[2].split("/")[0])
        await h.subscribe(f"http://rebinding.example:{port}/hook", events=["CALL_RECEIVED"])
        await h.subscribe(f"http://public.example:{port}/hook", events=["CALL_RECEIVED"])
        call_id = await h.inbound_call()
        rows = await settled_rows(h, 2)
        assert rows["public.example"].delivered_at is not None, "the public name was not delivered to"
        assert "private address" in (rows["rebinding.example"].last_error or "")
        assert rows["rebinding.example"].delivered_at is None

        await h.client.post(f"/calls/1/calls/{call_id}/answer", json={})
        audio = {"type": "URL", "fileUrl": f"http://audio.example:{port}/audio.wav"}
        played = await h.client.post(f"/calls/1/calls/{call_id}/play", json={"content": audio})
        assert played.status_code == 400 and "private address" in played.text, played.text

        permission = await h.client.get(f"/whatsapp/1/senders/{SENDER_ID}/calls/15550001234/permissions")
        assert permission.status_code == 200, permission.text

    assert receiver.events == [] and receiver.audio_fetches == 0
    assert set(network.dialled) == {(PUBLIC, port)}
    assert {"rebinding.example", "audio.example", "graph.example"} <= set(resolver.lookups)
