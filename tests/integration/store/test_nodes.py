"""Several nodes on one database: outbox leases (stream heads, one holder at a time, taken over when a
lease runs out), dead-node claims (one claimer, leases freed), call owners, jobs handed to a node and
calls adopted from a dead node. On SQLite and on PostgreSQL (skipped when it is not reachable)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from support.databases import KINDS, empty_database
from switchboard.core.models import Call, CallState, Direction, Endpoint, EndpointType
from switchboard.store import Database, SqlCallRepository, migrate
from switchboard.store.calls_api import WebhookOutboxRow
from switchboard.store.jobs import SqlJobQueue
from switchboard.store.nodes import SqlNodes
from switchboard.store.outbox import OutboxLeases
from switchboard.store.tables import JobRow

LEASE = timedelta(seconds=30)


@pytest.fixture(params=KINDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with empty_database(request.param, tmp_path) as database_url:
        await migrate(database_url)
        yield database_url


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()


def now() -> datetime:
    return datetime.now(UTC)


async def store_events(db: Database, streams: list[tuple[str, str | None]]) -> list[int]:
    rows = [
        WebhookOutboxRow(
            subscription_id=subscription,
            url="http://app.test/events",
            event_type="E",
            call_id=call_id,
            body="{}",
            attempts=0,
            next_attempt_at=now() - timedelta(seconds=1),
            created_at=now(),
        )
        for subscription, call_id in streams
    ]
    async with db.session() as s:
        s.add_all(rows)
    return [row.id for row in rows]


async def test_only_stream_heads_are_claimed_and_each_by_one_node(db: Database) -> None:
    a1, b1, a2, n1, n2, c1 = await store_events(
        db, [("s", "a"), ("s", "b"), ("s", "a"), ("s", None), ("s", None), ("t", "a")]
    )
    node_a, node_b = OutboxLeases(db, "node-a"), OutboxLeases(db, "node-b")

    first = [row.id for row in await node_a.claim(now(), limit=10, lease=LEASE)]
    assert first == [a1, b1, n1, c1], "only the oldest pending row of each stream is claimable"
    assert await node_b.claim(now(), limit=10, lease=LEASE) == [], "leased heads are not taken twice"

    assert await node_a.record(a1, attempts=1, next_attempt_at=now(), delivered_at=now())
    assert [row.id for row in await node_b.claim(now(), limit=10, lease=LEASE)] == [a2]
    assert not await node_a.record(a2, attempts=1, next_attempt_at=now(), delivered_at=now()), (
        "node-a does not hold a2"
    )
    assert await node_b.record(a2, attempts=1, next_attempt_at=now(), delivered_at=now())
    assert await node_a.record(n1, attempts=9, next_attempt_at=now(), failed_at=now(), last_error="gave up")
    assert [row.id for row in await node_b.claim(now(), limit=10, lease=LEASE)] == [n2]


async def test_a_lease_that_ran_out_is_taken_over_and_the_late_outcome_is_not_written(db: Database) -> None:
    (row_id,) = await store_events(db, [("s", "a")])
    dead, alive = OutboxLeases(db, "node-dead"), OutboxLeases(db, "node-alive")
    assert [r.id for r in await dead.claim(now(), limit=5, lease=timedelta(seconds=1))] == [row_id]
    assert await alive.claim(now(), limit=5, lease=LEASE) == []
    later = now() + timedelta(seconds=2)
    assert [r.id for r in await alive.claim(later, limit=5, lease=LEASE)] == [row_id]
    assert not await dead.record(row_id, attempts=1, next_attempt_at=now(), delivered_at=now())
    assert await alive.record(row_id, attempts=1, next_attempt_at=now(), delivered_at=now())


async def test_a_restarted_node_frees_its_own_leases(db: Database) -> None:
    (row_id,) = await store_events(db, [("s", "a")])
    before = OutboxLeases(db, "node-a")
    assert len(await before.claim(now(), limit=5, lease=LEASE)) == 1
    assert await OutboxLeases(db, "node-b").claim(now(), limit=5, lease=LEASE) == []
    await OutboxLeases(db, "node-a").release()
    assert [r.id for r in await OutboxLeases(db, "node-b").claim(now(), limit=5, lease=LEASE)] == [row_id]


@pytest.mark.postgres
async def test_concurrent_claims_on_postgresql_never_share_a_row(tmp_path: Path) -> None:
    async with empty_database("postgresql", tmp_path) as url:
        await migrate(url)
        databases = [Database(url) for _ in range(4)]
        try:
            await store_events(databases[0], [("s", f"call-{i}") for i in range(200)])
            leases = [OutboxLeases(d, f"node-{i}") for i, d in enumerate(databases)]

            async def claim_all(node: OutboxLeases) -> list[int]:
                got: list[int] = []
                while batch := await node.claim(now(), limit=7, lease=LEASE):
                    got += [row.id for row in batch]
                return got

            claimed = await asyncio.gather(*(claim_all(node) for node in leases))
            every = [row_id for ids in claimed for row_id in ids]
            assert len(every) == 200 and len(set(every)) == 200
        finally:
            for database in databases:
                await database.close()


def live_call(call_id: str, state: CallState = CallState.ESTABLISHED) -> Call:
    return Call(
        id=call_id,
        endpoint=Endpoint(EndpointType.WHATSAPP, phone_number="447700900001"),
        direction=Direction.INBOUND,
        from_="447700900001",
        to="15550100000",
        state=state,
        peer_call_id=f"wacid.{call_id}",
        start_time=now(),
    )


async def test_call_owners_name_the_other_live_node(db: Database) -> None:
    here, there = SqlNodes(db, "node-a", timeout_s=10), SqlNodes(db, "node-b", timeout_s=10)
    await there.heartbeat("http://127.0.0.1:1002", now())
    await here.heartbeat("http://127.0.0.1:1001", now())  # sees node-b: calls may be elsewhere
    await SqlCallRepository(db, "node-b").save(live_call("on-b"))
    await SqlCallRepository(db, "node-a").save(live_call("on-a"))
    await SqlCallRepository(db, "node-b").save(live_call("ended", CallState.FINISHED))

    owner = await here.of_call("on-b")
    assert owner is not None and (owner.node_id, owner.url, owner.alive) == (
        "node-b",
        "http://127.0.0.1:1002",
        True,
    )
    assert await here.of_peer_call("wacid.on-b", None) == owner
    assert await here.of_peer_call("unknown", "on-b") == owner, "found by our id (the call hint)"
    assert await here.of_call("on-a") is None, "a call of this node is not elsewhere"
    assert await here.of_call("ended") is None
    assert await here.of_call("nobody") is None

    await there.heartbeat("http://127.0.0.1:1002", now() - timedelta(seconds=11))
    stale = await here.of_call("on-b")
    assert stale is not None and not stale.alive


async def test_a_node_alone_looks_nothing_up(db: Database) -> None:
    await SqlCallRepository(db, "node-b").save(live_call("on-b"))
    alone = SqlNodes(db, "node-a", timeout_s=10)
    await alone.heartbeat("http://127.0.0.1:1001", now())
    assert await alone.of_call("on-b") is None, "no other node in the directory: nothing is elsewhere"


async def test_a_dead_node_is_claimed_once_and_what_it_held_is_freed(db: Database) -> None:
    dead = SqlNodes(db, "node-dead", timeout_s=10)
    await dead.heartbeat("http://127.0.0.1:1", now() - timedelta(seconds=60))
    (row_id,) = await store_events(db, [("s", "a")])
    await OutboxLeases(db, "node-dead").claim(now(), limit=5, lease=LEASE)
    jobs = SqlJobQueue(db, "node-live")
    await jobs.enqueue("k", "handed", {}, at=now())
    (handed,) = await jobs.claim_due(now(), limit=5, lease=LEASE)
    await jobs.hand_over(handed.id, "node-dead")

    a, b = SqlNodes(db, "node-a", timeout_s=10), SqlNodes(db, "node-b", timeout_s=10)
    claims = await asyncio.gather(*(n.claim_dead(now() - timedelta(seconds=10)) for n in (a, b, a, b)))
    assert sorted(node for claim in claims for node in claim) == ["node-dead"], "claimed exactly once"
    assert [r.id for r in await OutboxLeases(db, "node-a").claim(now(), limit=5, lease=LEASE)] == [row_id]
    async with db.session() as s:
        job = (await s.scalars(select(JobRow).where(JobRow.key == "handed"))).one()
    assert (job.node_id, job.lease_owner) == (None, None), "the job handed to the dead node is free again"
    assert await a.claim_dead(now() - timedelta(seconds=10)) == []


async def test_a_job_handed_to_a_node_runs_there_only(db: Database) -> None:
    here, there = SqlJobQueue(db, "node-a"), SqlJobQueue(db, "node-b")
    await here.enqueue("k", "item", {"n": 1}, at=now())
    (job,) = await here.claim_due(now(), limit=5, lease=LEASE)
    await here.hand_over(job.id, "node-b")
    assert await here.claim_due(now(), limit=5, lease=LEASE) == []
    (again,) = await there.claim_due(now(), limit=5, lease=LEASE)
    assert (again.id, again.payload) == (job.id, {"n": 1})


async def test_a_dead_nodes_unfinished_calls_are_adopted_once(db: Database) -> None:
    dead = SqlCallRepository(db, "node-dead")
    for call_id in ("c1", "c2"):
        await dead.save(live_call(call_id))
    await dead.save(live_call("done", CallState.FINISHED))
    a, b = SqlCallRepository(db, "node-a"), SqlCallRepository(db, "node-b")
    adopted = await asyncio.gather(a.adopt("node-dead"), b.adopt("node-dead"))
    assert sorted(call.id for calls in adopted for call in calls) == ["c1", "c2"]
    winner = a if adopted[0] else b
    assert sorted(call.id for call in await winner.unfinished()) == ["c1", "c2"]
