"""The routing application's repositories on SQLite and PostgreSQL: orders unique and dense through
moves, deletions and concurrent changes from two servers (two `Database`s on one database); recordings
grouped by routed call, filtered and paged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.databases import KINDS, empty_database
from switchboard.store import Database, migrate
from switchboard.store.routing import RecordingFilter, RecordingRow, SqlRouteRepository, SqlRoutingRecordings

DESTINATIONS = [{"type": "ENDPOINT", "value": {"type": "SIP", "sipTrunkId": "pbx"}}]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=KINDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with empty_database(request.param, tmp_path) as database_url:
        await migrate(database_url)
        yield database_url


async def orders(routes: SqlRouteRepository) -> list[str]:
    records, total = await routes.page(name_contains=None, page=0, size=1000)
    assert [r.order for r in records] == list(range(1, total + 1))
    return [r.id for r in records]


async def test_two_servers_changing_routes_at_once_keep_orders_dense(url: str) -> None:
    first, second = Database(url), Database(url)
    try:
        a, b = SqlRouteRepository(first), SqlRouteRepository(second)
        await asyncio.gather(
            *(repo.create(f"r{i}", f"r{i}", [], DESTINATIONS) for i, repo in enumerate([a, b] * 5))
        )
        ids = await orders(a)
        assert sorted(ids) == sorted(f"r{i}" for i in range(10))
        await asyncio.gather(
            a.set_order("r0", 10),
            b.set_order("r9", 1),
            a.delete("r4"),
            b.delete("r5"),
            a.create("late-a", "late", [], DESTINATIONS),
            b.create("late-b", "late", [], DESTINATIONS),
        )
        final = await orders(b)
        assert len(final) == 10 and "r4" not in final and {"late-a", "late-b"} <= set(final)
        moved = await a.set_order("late-a", 1)
        assert moved is not None and moved.order == 1 and (await orders(a))[0] == "late-a"
        assert await a.set_order("missing", 1) is None and await a.delete("missing") is None
        second_place = (await orders(a))[1]
        removed = await b.delete(second_place)
        assert removed is not None and removed.id == second_place and removed.order == 2
        assert second_place not in await orders(a)
        named, total = await a.page(name_contains="LAT", page=0, size=10)
        assert total == 2 and {r.id for r in named} == {"late-a", "late-b"}
        assert (await a.page(name_contains="%", page=0, size=10))[1] == 0
    finally:
        await first.close()
        await second.close()


def recording(file_id: str, correlation: str, minutes: int, **changes: object) -> RecordingRow:
    fields: dict[str, object] = {
        "file_id": file_id,
        "call_id": f"child-{file_id}",
        "correlation_id": correlation,
        "route_id": "route-1",
        "route_name": "to the PBX",
        "endpoint_type": "WHATSAPP",
        "address": "447700900555",
        "sip_trunk_id": None,
        "path": f"/tmp/{file_id}.wav",
        "file_format": "WAV",
        "size": 100,
        "duration": 3,
        "end_time": T0 + timedelta(minutes=minutes),
        "custom_data": {"k": "v"},
    }
    fields.update(changes)
    return RecordingRow(**fields)  # type: ignore[arg-type]


async def test_recordings_are_grouped_filtered_and_paged(url: str) -> None:
    db = Database(url)
    try:
        recordings = SqlRoutingRecordings(db)
        await recordings.add(recording("f1", "call-a", 1))
        await recordings.add(recording("f2", "call-a", 2))
        await recordings.add(
            recording("f3", "call-b", 3, endpoint_type="SIP", address="100", sip_trunk_id="t")
        )
        groups, total = await recordings.search(
            RecordingFilter(), sort_by="END_TIME", descending=True, page=0, size=1
        )
        assert total == 2 and [[r.file_id for r in g] for g in groups] == [["f3"]]
        groups, _ = await recordings.search(
            RecordingFilter(), sort_by="END_TIME", descending=True, page=1, size=1
        )
        assert [[r.file_id for r in g] for g in groups] == [["f1", "f2"]]
        by_phone, total = await recordings.search(
            RecordingFilter(phone_number="447700900555"),
            sort_by="START_TIME",
            descending=False,
            page=0,
            size=10,
        )
        assert total == 1 and by_phone[0][0].custom_data == {"k": "v"}
        sip, _ = await recordings.search(
            RecordingFilter(sip_username="100", sip_trunk_id="t"),
            sort_by="ROUTE_ID",
            descending=False,
            page=0,
            size=10,
        )
        assert [[r.file_id for r in g] for g in sip] == [["f3"]]
        late, total = await recordings.search(
            RecordingFilter(start_after=T0 + timedelta(minutes=2)),
            sort_by="END_TIME",
            descending=False,
            page=0,
            size=10,
        )
        assert total == 2 and [[r.file_id for r in g] for g in late] == [["f2"], ["f3"]]
        assert (await recordings.file("f2")) == recording("f2", "call-a", 2)
        assert {r.file_id for r in await recordings.delete("call-a")} == {"f1", "f2"}
        assert await recordings.file("f1") is None
    finally:
        await db.close()
