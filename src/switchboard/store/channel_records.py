"""Channels' own documents (`ChannelRecords`): JSON under (kind, key), read through a small cached view
per kind (every webhook and call looks its account up; a business has few)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from switchboard.core.ports import ChannelRecord
from switchboard.store.base import Database, insert_on_conflict
from switchboard.store.tables import ChannelRecordRow
from switchboard.store.views import CachedView


class SqlChannelRecords:
    def __init__(self, db: Database, *, max_age_s: float = 5.0) -> None:
        self._db = db
        self._max_age_s = max_age_s
        self._views: dict[str, CachedView[ChannelRecord]] = {}

    def _view(self, kind: str) -> CachedView[ChannelRecord]:
        view = self._views.get(kind)
        if view is None:

            async def load() -> list[ChannelRecord]:
                async with self._db.session() as session:
                    query = (
                        select(ChannelRecordRow)
                        .where(ChannelRecordRow.kind == kind)
                        .order_by(ChannelRecordRow.created_at, ChannelRecordRow.key)
                    )
                    rows = (await session.scalars(query)).all()
                    return [ChannelRecord(row.kind, row.key, dict(row.data)) for row in rows]

            view = self._views[kind] = CachedView(load, max_age_s=self._max_age_s)
        return view

    async def list(self, kind: str) -> Sequence[ChannelRecord]:
        return list(await self._view(kind).items())

    async def get(self, kind: str, key: str) -> ChannelRecord | None:
        return next((r for r in await self._view(kind).items() if r.key == key), None)

    async def save(self, kind: str, key: str, data: Mapping[str, Any]) -> None:
        now = datetime.now(UTC)
        statement = insert_on_conflict(
            self._db.dialect,
            ChannelRecordRow,
            {"kind": kind, "key": key, "data": dict(data), "created_at": now, "updated_at": now},
            key=["kind", "key"],
            update=["data", "updated_at"],
        )
        async with self._db.session() as session:
            await session.execute(statement)
        self._view(kind).invalidate()

    async def delete(self, kind: str, key: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(ChannelRecordRow).where(ChannelRecordRow.kind == kind, ChannelRecordRow.key == key)
            )
        self._view(kind).invalidate()
        return bool(getattr(result, "rowcount", 0))
