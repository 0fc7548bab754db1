"""Leases on the webhook outbox (`OutboxLeases`), so that several nodes on one database deliver each row
once and each stream in order.

A stream is one subscription's view of one call (`subscription_id`, `call_id`). Only the oldest pending
row of a stream (its head) can be claimed, and a claim leases it to one node until `lease_until`: a
stream is therefore delivered by one node at a time, oldest first, and the next row becomes claimable
only once the head is delivered or given up. On PostgreSQL the claim locks the rows it takes
(`FOR UPDATE SKIP LOCKED`), so concurrent claims never take the same row; SQLite has one writer.
A node that dies leaves its leases to run out (or to be freed when it is declared dead).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import aliased

from switchboard.store.base import Database
from switchboard.store.calls_api import WebhookOutboxRow
from switchboard.store.writes import Outcome, Step

_Head = aliased(WebhookOutboxRow)
_Earlier = aliased(WebhookOutboxRow)


def _pending(row: Any) -> tuple[Any, Any]:
    return row.delivered_at.is_(None), row.failed_at.is_(None)


def _claim_statement(dialect: str, owner: str) -> Any:
    """One UPDATE ... RETURNING that leases the due, free stream heads (`now`, `limit`, `until`)."""
    now = bindparam("now", type_=_Head.next_attempt_at.type)
    same_call = (_Earlier.call_id == _Head.call_id) | (_Earlier.call_id.is_(None) & _Head.call_id.is_(None))
    earlier_pending = exists().where(
        _Earlier.subscription_id == _Head.subscription_id,
        same_call,
        _Earlier.id < _Head.id,
        *_pending(_Earlier),
    )
    heads = (
        select(_Head.id)
        .where(
            *_pending(_Head),
            _Head.next_attempt_at <= now,
            _Head.lease_until.is_(None) | (_Head.lease_until < now),
            ~earlier_pending,
        )
        .order_by(_Head.id)
        .limit(bindparam("limit"))
    )
    if dialect == "postgresql":
        heads = heads.with_for_update(skip_locked=True)
    row = WebhookOutboxRow
    return (
        update(row)
        .where(row.id.in_(heads.scalar_subquery()))
        .values(lease_owner=owner, lease_until=bindparam("until", type_=row.lease_until.type))
        .returning(*row.__table__.columns)
    )


class OutboxLeases:
    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner
        self._claim = _claim_statement(db.dialect, owner)
        row = WebhookOutboxRow
        self._record = (
            update(row)
            .where(row.id == bindparam("row_id"), row.lease_owner == owner)
            .values(
                attempts=bindparam("attempts"),
                next_attempt_at=bindparam("next_attempt_at"),
                delivered_at=bindparam("delivered_at"),
                failed_at=bindparam("failed_at"),
                last_error=bindparam("last_error"),
                lease_owner=None,
                lease_until=None,
            )
        )

    def claim_step(self, now: datetime, *, limit: int, lease: timedelta) -> Step:
        """A write step that leases up to `limit` due stream heads nobody holds to this node until
        `now + lease`; run it with other steps to claim in their transaction (`claimed` reads it)."""
        return Step(self._claim, {"now": now, "limit": limit, "until": now + lease})

    @staticmethod
    def claimed(outcome: Outcome) -> list[Any]:
        """The rows a claim step leased (with the outbox's columns as attributes), oldest first."""
        return sorted(outcome.rows, key=lambda row: int(row.id))

    async def claim(self, now: datetime, *, limit: int, lease: timedelta) -> Sequence[Any]:
        (outcome,) = await self._db.write(self.claim_step(now, limit=limit, lease=lease))
        return self.claimed(outcome)

    async def release(self) -> None:
        """Free the leases this node holds (it is starting: nothing of its earlier life delivers any more)."""
        async with self._db.session() as session:
            await session.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.lease_owner == self.owner, *_pending(WebhookOutboxRow))
                .values(lease_owner=None, lease_until=None)
            )

    def record_step(
        self,
        row_id: int,
        *,
        attempts: int,
        next_attempt_at: datetime,
        delivered_at: datetime | None = None,
        failed_at: datetime | None = None,
        last_error: str | None = None,
    ) -> Step:
        """A write step for an attempt's outcome that frees the lease, if this node still holds it
        (its rowcount is 0 if not: the lease ran out and another node has the row)."""
        values = {
            "row_id": row_id,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "delivered_at": delivered_at,
            "failed_at": failed_at,
            "last_error": last_error,
        }
        return Step(self._record, values)

    async def record(self, row_id: int, **outcome: Any) -> bool:
        (result,) = await self._db.write(self.record_step(row_id, **outcome))
        return result.rowcount == 1
