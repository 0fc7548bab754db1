"""The nodes sharing the database (`SqlNodes`: the core's `NodeDirectory` and `CallOwners`).

Looking a call's carrier up costs a query, so a node that was alone in the directory at its last
heartbeat answers "not elsewhere" at once: a node that joins is seen within one heartbeat interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update

from switchboard.core.models import FINAL_STATES
from switchboard.core.nodes import CallOwner
from switchboard.store.base import Database, upsert
from switchboard.store.calls_api import WebhookOutboxRow
from switchboard.store.tables import CallRow, DialogRow, JobRow, NodeRow
from switchboard.store.writes import Step

_FINAL = [state.value for state in FINAL_STATES]


class SqlNodes:
    def __init__(self, db: Database, node_id: str, *, timeout_s: float) -> None:
        self._db = db
        self.node_id = node_id
        self._timeout = timedelta(seconds=timeout_s)
        self._heartbeat = upsert(db.dialect, NodeRow, key=["node_id"], update=["url", "heartbeat_at"])
        self._count_others = (
            select(func.count().label("nodes")).select_from(NodeRow).where(NodeRow.node_id != node_id)
        )
        self._others = True
        """Whether other nodes were in the directory at the last heartbeat; alone, no call is elsewhere."""
        self._by_id = _owner_query(CallRow.id == bindparam("call_id"))
        self._by_peer = _owner_query(
            or_(CallRow.peer_call_id == bindparam("peer_call_id"), CallRow.id == bindparam("call_id"))
        )
        parent = select(DialogRow.parent_call_id).where(DialogRow.id == bindparam("dialog_id"))
        self._by_dialog = _owner_query(CallRow.id == parent.scalar_subquery())

    async def heartbeat(self, url: str, now: datetime) -> None:
        values = {"node_id": self.node_id, "url": url, "started_at": now, "heartbeat_at": now}
        await self._db.write(Step(self._heartbeat, values))
        (others,) = await self._db.read(self._count_others)
        self._others = others.nodes > 0

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
        return await self._owner(self._by_id, {"call_id": call_id})

    async def of_peer_call(self, peer_call_id: str, call_hint: str | None) -> CallOwner | None:
        return await self._owner(self._by_peer, {"peer_call_id": peer_call_id, "call_id": call_hint or ""})

    async def of_dialog(self, dialog_id: str) -> CallOwner | None:
        return await self._owner(self._by_dialog, {"dialog_id": dialog_id})

    async def _owner(self, query: Any, params: dict[str, str]) -> CallOwner | None:
        if not self._others:
            return None
        rows = await self._db.read(query, params)
        if not rows or not rows[0].node_id or rows[0].node_id == self.node_id:
            return None
        row = rows[0]
        alive = row.heartbeat_at is not None and row.heartbeat_at >= datetime.now(UTC) - self._timeout
        return CallOwner(row.node_id, row.url, alive)


def _owner_query(match: Any) -> Any:
    """The carrier of the newest live call matching `match`, with its node's URL and heartbeat."""
    return (
        select(CallRow.node_id, NodeRow.url, NodeRow.heartbeat_at)
        .outerjoin(NodeRow, NodeRow.node_id == CallRow.node_id)
        .where(match, CallRow.state.not_in(_FINAL), CallRow.node_id.is_not(None))
        .order_by(CallRow.created_at.desc())
        .limit(1)
    )
