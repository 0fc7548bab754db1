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

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased

from switchboard.store.base import Database
from switchboard.store.calls_api import WebhookOutboxRow

_Earlier = aliased(WebhookOutboxRow)


def _pending(row: Any) -> tuple[Any, Any]:
    return row.delivered_at.is_(None), row.failed_at.is_(None)


class OutboxLeases:
    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    async def claim(self, now: datetime, *, limit: int, lease: timedelta) -> Sequence[WebhookOutboxRow]:
        """Up to `limit` due stream heads that nobody holds, leased to this node until `now + lease`."""
        row = WebhookOutboxRow
        same_call = (_Earlier.call_id == row.call_id) | (_Earlier.call_id.is_(None) & row.call_id.is_(None))
        earlier_pending = exists().where(
            _Earlier.subscription_id == row.subscription_id,
            same_call,
            _Earlier.id < row.id,
            *_pending(_Earlier),
        )
        query = (
            select(row)
            .where(
                *_pending(row),
                row.next_attempt_at <= now,
                row.lease_until.is_(None) | (row.lease_until < now),
                ~earlier_pending,
            )
            .order_by(row.id)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            query = query.with_for_update(of=row, skip_locked=True)
        async with self._db.session() as session:
            rows = list((await session.scalars(query)).all())
            for item in rows:
                item.lease_owner = self.owner
                item.lease_until = now + lease
        return rows

    async def release(self) -> None:
        """Free the leases this node holds (it is starting: nothing of its earlier life delivers any more)."""
        async with self._db.session() as session:
            await session.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.lease_owner == self.owner, *_pending(WebhookOutboxRow))
                .values(lease_owner=None, lease_until=None)
            )

    async def record(self, row_id: int, values: Mapping[str, Any]) -> bool:
        """Write an attempt's outcome and free the lease, if this node still holds it (False if not:
        its lease ran out and another node has the row)."""
        statement = (
            update(WebhookOutboxRow)
            .where(and_(WebhookOutboxRow.id == row_id, WebhookOutboxRow.lease_owner == self.owner))
            .values(**values, lease_owner=None, lease_until=None)
        )
        async with self._db.session() as session:
            result = await session.execute(statement)
        return int(getattr(result, "rowcount", 0)) == 1
