"""The delivery loop: per-stream order, each stored event delivered once when the receiver says 2xx,
retried when it does not, and resumed from the table after a restart."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from switchboard.apps.calls_api.outbox import Outbox, RetryPolicy
from switchboard.httpapi.urls import UrlPolicy
from switchboard.store import Database, migrate
from switchboard.store.calls_api import WebhookOutboxRow

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, jitter=0.0)


def now() -> datetime:
    return datetime.now(UTC)


async def profile(subscription_id: str) -> dict[str, Any]:
    return {"webhook": {"notifyUrl": "http://receiver.test/events"}}


async def store(db: Database, items: list[tuple[str, int]]) -> list[WebhookOutboxRow]:
    rows = [
        WebhookOutboxRow(
            subscription_id="s",
            url="http://receiver.test/events",
            event_type="E",
            call_id=call_id,
            body=json.dumps({"call": call_id, "n": n}),
            attempts=0,
            next_attempt_at=now(),
            created_at=now(),
        )
        for call_id, n in items
    ]
    async with db.session() as s:
        s.add_all(rows)
    return rows


async def test_each_event_once_in_order_per_call_despite_failures(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await migrate(url)
    db = Database(url)
    received: list[tuple[str, int]] = []
    rng = random.Random(7)

    async def handle(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(rng.random() * 0.003)
        if rng.random() < 0.3:
            return httpx.Response(503)
        body = json.loads(request.content)
        received.append((body["call"], body["n"]))
        return httpx.Response(200)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    outbox = Outbox(db, http, profiles=profile, urls=UrlPolicy(allow_private=True), clock=now, retry=FAST)
    runner = asyncio.create_task(outbox.run())
    calls = [f"call-{i}" for i in range(5)]
    expected = [(c, n) for n in range(12) for c in calls]
    for start in range(0, len(expected), 7):
        await store(db, expected[start : start + 7])
        outbox.wake()
        await asyncio.sleep(0.002)
    for _ in range(500):
        if len(received) >= len(expected):
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    assert sorted(received) == sorted(expected), "an event was lost or delivered twice"
    for call_id in calls:
        assert [n for c, n in received if c == call_id] == list(range(12))
    await http.aclose()
    await db.close()


async def test_pending_rows_are_resumed_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await migrate(url)
    db = Database(url)
    await store(db, [("call-a", 0), ("call-a", 1)])
    got: list[int] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        got.append(json.loads(request.content)["n"])
        return httpx.Response(204)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    outbox = Outbox(db, http, profiles=profile, urls=UrlPolicy(allow_private=True), clock=now, retry=FAST)
    runner = asyncio.create_task(outbox.run())
    rows: list[WebhookOutboxRow] = []
    for _ in range(200):
        async with db.session() as s:
            rows = list(await s.scalars(select(WebhookOutboxRow)))
        if len(got) == 2 and all(row.delivered_at is not None for row in rows):
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    assert got == [0, 1]
    assert rows and all(row.delivered_at is not None for row in rows), "delivered rows were not marked"
    await http.aclose()
    await db.close()
