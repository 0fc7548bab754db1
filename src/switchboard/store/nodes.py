"""The nodes sharing the database (`SqlNodes`: the core's `NodeDirectory` and `CallOwners`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from switchboard.core.models import FINAL_STATES
from switchboard.core.nodes import CallOwner
from switchboard.store.base import Database, upsert
from switchboard.store.calls_api import WebhookOutboxRow
from switchboard.store.tables import CallRow, DialogRow, JobRow, NodeRow

_FINAL = [state.value for state in FINAL_STATES]


class SqlNodes:
    def __init__(self, db: Database, node_id: str, *, timeout_s: float) -> None:
        self._db = db
        self.node_id = node_id
        self._timeout = timedelta(seconds=timeout_s)
        self._heartbeat = upsert(db.dialect, NodeRow, key=["node_id"], update=["url", "heartbeat_at"])

    async def heartbeat(self, url: str, now: datetime) -> None:
        values = {"node_id": self.node_id, "url": url, "started_at": now, "heartbeat_at": now}
        async with self._db.session() as session:
            await session.execute(self._heartbeat, values)

    async def claim_dead(self, before: datetime) -> Sequence[str]:
        stale = select(NodeRow.node_id).where(NodeRow.heartbeat_at < before, NodeRow.node_id != self.node_id)
        if self._db.dialect == "postgresql":
            stale = stale.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            candidates = list((await session.scalars(stale)).all())
            if not candidates:
                return []
            claimed = (
                delete(NodeRow)
                .where(NodeRow.node_id.in_(candidates), NodeRow.heartbeat_at < before)
                .returning(NodeRow.node_id)
            )
            dead = list((await session.scalars(claimed)).all())
            if dead:
                await self._free(session, dead)
        return dead

    async def _free(self, session: Any, dead: list[str]) -> None:
        """Release what `dead` nodes held: outbox and job leases, jobs handed to them."""
        pending = WebhookOutboxRow.delivered_at.is_(None), WebhookOutboxRow.failed_at.is_(None)
        await session.execute(
            update(WebhookOutboxRow)
            .where(WebhookOutboxRow.lease_owner.in_(dead), *pending)
            .values(lease_owner=None, lease_until=None)
        )
        await session.execute(
            update(JobRow)
            .where(
                or_(JobRow.lease_owner.in_(dead), JobRow.node_id.in_(dead)),
                JobRow.done_at.is_(None),
                JobRow.failed_at.is_(None),
            )
            .values(lease_owner=None, lease_until=None, node_id=None)
        )

    # -- CallOwners ------------------------------------------------------------------------------------

    async def of_call(self, call_id: str) -> CallOwner | None:
        return await self._owner(CallRow.id == call_id)

    async def of_peer_call(self, peer_call_id: str, call_hint: str | None) -> CallOwner | None:
        match = CallRow.peer_call_id == peer_call_id
        if call_hint:
            match = or_(match, CallRow.id == call_hint)
        return await self._owner(match)

    async def of_dialog(self, dialog_id: str) -> CallOwner | None:
        parent = select(DialogRow.parent_call_id).where(DialogRow.id == dialog_id).scalar_subquery()
        return await self._owner(CallRow.id == parent)

    async def _owner(self, match: Any) -> CallOwner | None:
        query = (
            select(CallRow.node_id, NodeRow.url, NodeRow.heartbeat_at)
            .outerjoin(NodeRow, NodeRow.node_id == CallRow.node_id)
            .where(match, CallRow.state.not_in(_FINAL), CallRow.node_id.is_not(None))
            .order_by(CallRow.created_at.desc())
            .limit(1)
        )
        async with self._db.session() as session:
            row = (await session.execute(query)).first()
        if row is None or row.node_id == self.node_id or not row.node_id:
            return None
        alive = row.heartbeat_at is not None and row.heartbeat_at >= datetime.now(UTC) - self._timeout
        return CallOwner(row.node_id, row.url, alive)
