"""Durable jobs (`JobQueue`): one row per (kind, key), claimed with a lease so that several processes on
one PostgreSQL never run the same job at once (`FOR UPDATE SKIP LOCKED`), and a crashed process's jobs
are taken over when its lease runs out. A job handed to a node (`hand_over`) is run by that node alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update

from switchboard.core.ports import Job
from switchboard.store.base import Database, insert_on_conflict, upsert
from switchboard.store.tables import JobRow
from switchboard.store.writes import Step


def _open(now: datetime, owner: str) -> Any:
    return (
        JobRow.done_at.is_(None),
        JobRow.failed_at.is_(None),
        JobRow.next_attempt_at <= now,
        (JobRow.lease_until.is_(None)) | (JobRow.lease_until < now),
        (JobRow.node_id.is_(None)) | (JobRow.node_id == owner),
    )


class SqlJobQueue:
    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self._owner = owner
        self._submit = upsert(db.dialect, JobRow, key=["kind", "key"]).returning(JobRow.id)
        self._complete = (
            update(JobRow)
            .where(JobRow.id == bindparam("job_id"))
            .values(done_at=bindparam("done_at"), lease_owner=None, lease_until=None)
        )

    async def submit(
        self, kind: str, key: str, payload: Mapping[str, Any], *, at: datetime, lease: timedelta
    ) -> int | None:
        values = {
            "kind": kind,
            "key": key,
            "payload": dict(payload),
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "lease_owner": self._owner,
            "lease_until": at + lease,
        }
        (outcome,) = await self._db.write(Step(self._submit, values))
        return int(outcome.rows[0].id) if outcome.rows else None

    async def prune(self, older_than: datetime) -> int:
        finished = (JobRow.done_at < older_than) | (JobRow.failed_at < older_than)
        async with self._db.session() as session:
            result = await session.execute(delete(JobRow).where(finished))
        return int(getattr(result, "rowcount", 0))

    async def enqueue(self, kind: str, key: str, payload: Mapping[str, Any], *, at: datetime) -> None:
        values = {
            "kind": kind,
            "key": key,
            "payload": dict(payload),
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        statement = insert_on_conflict(self._db.dialect, JobRow, values, key=["kind", "key"])
        async with self._db.session() as session:
            await session.execute(statement)

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> Sequence[Job]:
        query = (
            select(JobRow)
            .where(*_open(now, self._owner))
            .order_by(JobRow.next_attempt_at, JobRow.id)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
            for row in rows:
                row.lease_owner = self._owner
                row.lease_until = now + lease
            return [Job(r.id, r.kind, r.key, dict(r.payload), r.attempts, r.created_at) for r in rows]

    async def next_due(self) -> datetime | None:
        leased_later = JobRow.lease_until.is_not(None) & (JobRow.lease_until > JobRow.next_attempt_at)
        due = case((leased_later, JobRow.lease_until), else_=JobRow.next_attempt_at)
        query = select(func.min(due)).where(
            JobRow.done_at.is_(None),
            JobRow.failed_at.is_(None),
            (JobRow.node_id.is_(None)) | (JobRow.node_id == self._owner),
        )
        async with self._db.session() as session:
            value: datetime | None = (await session.execute(query)).scalar_one()
        return value

    async def release_leases(self) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(JobRow)
                .where(
                    JobRow.lease_owner == self._owner, JobRow.done_at.is_(None), JobRow.failed_at.is_(None)
                )
                .values(lease_owner=None, lease_until=None)
            )

    async def hand_over(self, job_id: int, node_id: str) -> None:
        now = datetime.now(UTC)
        await self._finish(job_id, node_id=node_id, next_attempt_at=now, lease_until=None, lease_owner=None)

    async def complete(self, job_id: int) -> None:
        await self._db.write(Step(self._complete, {"job_id": job_id, "done_at": datetime.now(UTC)}))

    async def retry(self, job_id: int, *, at: datetime, error: str) -> None:
        await self._finish(
            job_id,
            attempts=JobRow.attempts + 1,
            next_attempt_at=at,
            last_error=error[:2000],
            lease_until=None,
            lease_owner=None,
        )

    async def give_up(self, job_id: int, *, error: str) -> None:
        await self._finish(
            job_id,
            attempts=JobRow.attempts + 1,
            failed_at=datetime.now(UTC),
            last_error=error[:2000],
            lease_until=None,
            lease_owner=None,
        )

    async def _finish(self, job_id: int, **values: Any) -> None:
        async with self._db.session() as session:
            await session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
