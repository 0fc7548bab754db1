"""Group commit (`store.writes`): writes queued while a transaction commits share the next one; each
writer returns only once its own write is committed; a failing write fails alone; order is kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from support.databases import KINDS, empty_database
from switchboard.store import Database, migrate
from switchboard.store.base import upsert
from switchboard.store.tables import NodeRow
from switchboard.store.writes import GroupCommit, Outcome, Step, Write


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with empty_database(request.param, tmp_path) as url:
        await migrate(url)
        database = Database(url)
        try:
            yield database
        finally:
            await database.close()


def node_values(key: str, now: datetime | None = None) -> dict[str, object]:
    now = now or datetime.now(UTC)
    return {"node_id": key, "url": "http://127.0.0.1:1", "started_at": now, "heartbeat_at": now}


def node_insert(key: str) -> Step:
    return Step(insert(NodeRow), node_values(key))


async def stored_keys(db: Database) -> list[str]:
    async with db.session() as s:
        return list(await s.scalars(select(NodeRow.node_id).order_by(NodeRow.node_id)))


async def test_writes_queued_during_a_commit_share_the_next_transaction() -> None:
    release = asyncio.Event()
    groups: list[int] = []

    async def executor(writes: list[Write]) -> list[list[Outcome] | Exception]:
        groups.append(len(writes))
        if len(groups) == 1:
            await release.wait()
        return [[Outcome(1, [])] for _ in writes]

    commits = GroupCommit(executor)
    first = asyncio.create_task(commits.write())
    await asyncio.sleep(0)  # one turn of the loop: the new tasks queue their writes
    others = [asyncio.create_task(commits.write()) for _ in range(5)]
    await asyncio.sleep(0)  # one turn of the loop: the new tasks queue their writes
    assert groups == [1] and not any(task.done() for task in [first, *others])
    release.set()
    await asyncio.gather(first, *others)
    assert groups == [1, 5]
    await commits.drain()


async def test_every_writer_returns_after_its_write_is_committed(db: Database) -> None:
    upserted = upsert(db.dialect, NodeRow, key=["node_id"])
    now = datetime.now(UTC)

    async def first_time(key: str) -> bool:
        (outcome,) = await db.write(Step(upserted, node_values(key, now)))
        assert key in await stored_keys(db)
        return outcome.rowcount == 1

    keys = [f"k{i:02d}" for i in range(20)]
    assert await asyncio.gather(*(first_time(k) for k in keys)) == [True] * 20
    assert await asyncio.gather(*(first_time(k) for k in keys[:5])) == [False] * 5
    assert await stored_keys(db) == keys


async def test_a_failing_write_fails_alone_and_the_others_commit(db: Database) -> None:
    await db.write(node_insert("taken"))
    results = await asyncio.gather(
        db.write(node_insert("a")),
        db.write(node_insert("b"), node_insert("taken")),  # a duplicate key: this write fails whole
        db.write(node_insert("c")),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert await stored_keys(db) == ["a", "c", "taken"]


async def test_returning_rows_come_back_in_parameter_order(db: Database) -> None:
    from switchboard.store.calls_api import WebhookOutboxRow

    now = datetime.now(UTC)
    rows = [
        {
            "subscription_id": "s",
            "url": "http://app.test/",
            "event_type": "E",
            "call_id": f"call-{i}",
            "body": str(i),
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for i in range(3)
    ]
    statement = insert(WebhookOutboxRow).returning(WebhookOutboxRow.id, sort_by_parameter_order=True)
    (outcome,) = await db.write(Step(statement, rows))
    (single,) = await db.write(Step(statement, {**rows[0], "body": "3"}))
    ids = [row.id for row in [*outcome.rows, *single.rows]]
    async with db.session() as s:
        stored = {row.id: row.body for row in await s.scalars(select(WebhookOutboxRow))}
    assert [stored[i] for i in ids] == ["0", "1", "2", "3"]


async def test_a_cancelled_writer_does_not_lose_the_others_writes(db: Database) -> None:
    writers = [asyncio.create_task(db.write(node_insert(f"w{i}"))) for i in range(4)]
    await asyncio.sleep(0)  # one turn of the loop: the new tasks queue their writes
    writers[1].cancel()
    await asyncio.gather(*writers, return_exceptions=True)
    await db.write(node_insert("after"))
    assert {"w0", "w2", "w3", "after"} <= set(await stored_keys(db))


async def test_close_waits_for_queued_writes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await migrate(url)
    first = Database(url)
    writers = [asyncio.create_task(first.write(node_insert(f"k{i}"))) for i in range(10)]
    await asyncio.sleep(0)  # one turn of the loop: the new tasks queue their writes
    await first.close()
    assert all(task.done() for task in writers)
    second = Database(url)
    try:
        assert len(await stored_keys(second)) == 10
    finally:
        await second.close()


async def test_python_side_column_defaults_are_applied(db: Database) -> None:
    from switchboard.store.calls_api import WebhookOutboxRow

    now = datetime.now(UTC)
    row = {
        "subscription_id": "s",
        "url": "http://app.test/",
        "event_type": "E",
        "call_id": "c",
        "body": "{}",
        "next_attempt_at": now,
        "created_at": now,
    }  # no "attempts": its column default (0) fills it in
    await db.write(Step(insert(WebhookOutboxRow), row))
    async with db.session() as s:
        assert list(await s.scalars(select(WebhookOutboxRow.attempts))) == [0]
