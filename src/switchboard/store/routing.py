"""Tables and repositories of the call-routing application: routes (kept in a dense, unique `order`) and
the recordings made on routed calls.

Criteria and destinations are JSON as the API validated them; the application owns their shape.
A change of the order (create, move, delete) is serialised against every other, across servers: it
first locks the table (PostgreSQL) or writes (SQLite, so it holds the one write lock before it reads);
a move or delete then turns every order into a negative placeholder and gives each route its place, so
the unique index on the order holds at every step (a business has tens of routes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.store.base import Base, Database
from switchboard.store.views import CachedView


class RouteRow(Base):
    __tablename__ = "routing_routes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, index=True, unique=True)
    """The route's `order` (1 is tried first); unique, so concurrent changes cannot share one."""
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    destinations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RoutingRecordingRow(Base):
    __tablename__ = "routing_recordings"

    file_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(128))
    correlation_id: Mapped[str] = mapped_column(String(128), index=True)
    route_id: Mapped[str] = mapped_column(String(64), index=True)
    route_name: Mapped[str] = mapped_column(String(255))
    endpoint_type: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255))
    sip_trunk_id: Mapped[str | None] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    duration: Mapped[int] = mapped_column(Integer)
    custom_data: Mapped[dict[str, str]] = mapped_column(JSON)
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RouteRecord:
    id: str
    name: str
    status: str
    order: int
    criteria: Sequence[Mapping[str, Any]]
    destinations: Sequence[Mapping[str, Any]]

    @classmethod
    def of(cls, row: RouteRow) -> RouteRecord:
        return cls(row.id, row.name, row.status, row.position, list(row.criteria), list(row.destinations))


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """One file recorded on a call routed with a destination's `recording` option."""

    file_id: str
    call_id: str
    correlation_id: str
    """The inbound call that was routed."""
    route_id: str
    route_name: str
    endpoint_type: str
    address: str
    """The destination's number, SIP username or WebRTC identity."""
    sip_trunk_id: str | None
    path: str
    file_format: str
    size: int
    duration: int
    end_time: datetime
    start_time: datetime | None = None
    custom_data: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: RoutingRecordingRow) -> RecordingRow:
        end = _utc(row.end_time)
        assert end is not None
        return cls(
            file_id=row.file_id,
            call_id=row.call_id,
            correlation_id=row.correlation_id,
            route_id=row.route_id,
            route_name=row.route_name,
            endpoint_type=row.endpoint_type,
            address=row.address,
            sip_trunk_id=row.sip_trunk_id,
            path=row.path,
            file_format=row.file_format,
            size=row.size,
            duration=row.duration,
            end_time=end,
            start_time=_utc(row.start_time),
            custom_data=dict(row.custom_data),
        )


@dataclass(frozen=True, slots=True)
class RecordingFilter:
    endpoint_type: str | None = None
    phone_number: str | None = None
    sip_trunk_id: str | None = None
    sip_username: str | None = None
    webrtc_identity: str | None = None
    route_id: str | None = None
    route_name: str | None = None
    correlation_id: str | None = None
    start_after: datetime | None = None
    start_before: datetime | None = None


class SqlRouteRepository:
    def __init__(self, db: Database, *, max_age_s: float = 5.0) -> None:
        self._db = db
        self._view = CachedView(self._load, max_age_s=max_age_s)
        self._changing = asyncio.Lock()
        """Serialises this server's order changes (the database serialises them across servers)."""

    async def _load(self) -> list[RouteRecord]:
        async with self._db.session() as s:
            rows = await s.scalars(select(RouteRow).order_by(RouteRow.position, RouteRow.created_at))
            return [RouteRecord.of(r) for r in rows]

    async def all(self) -> Sequence[RouteRecord]:
        return await self._view.items()

    async def create(
        self,
        route_id: str,
        name: str,
        criteria: Sequence[Mapping[str, Any]],
        destinations: Sequence[Mapping[str, Any]],
    ) -> RouteRecord:
        now = datetime.now(UTC)
        last = select(func.coalesce(func.max(RouteRow.position), 0) + 1).scalar_subquery()
        async with self._changing, self._db.session() as s:
            await self._lock(s)
            await s.execute(
                insert(RouteRow).values(
                    id=route_id,
                    name=name,
                    status="ENABLED",
                    position=last,
                    criteria=[dict(c) for c in criteria],
                    destinations=[dict(d) for d in destinations],
                    created_at=now,
                    updated_at=now,
                )
            )
            row = await s.get_one(RouteRow, route_id)
            record = RouteRecord.of(row)
        self._view.invalidate()
        return record

    async def page(
        self, *, name_contains: str | None, page: int, size: int
    ) -> tuple[Sequence[RouteRecord], int]:
        query = select(RouteRow)
        if name_contains:
            escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(RouteRow.name.ilike(f"%{escaped}%", escape="\\"))
        async with self._db.session() as s:
            total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = await s.scalars(query.order_by(RouteRow.position).offset(page * size).limit(size))
            return [RouteRecord.of(r) for r in rows], total

    async def get(self, route_id: str) -> RouteRecord | None:
        async with self._db.session() as s:
            row = await s.get(RouteRow, route_id)
            return RouteRecord.of(row) if row is not None else None

    async def update(
        self,
        route_id: str,
        name: str,
        criteria: Sequence[Mapping[str, Any]],
        destinations: Sequence[Mapping[str, Any]],
    ) -> RouteRecord | None:
        async with self._db.session() as s:
            row = await s.get(RouteRow, route_id)
            if row is None:
                return None
            row.name = name
            row.criteria = [dict(c) for c in criteria]
            row.destinations = [dict(d) for d in destinations]
            row.updated_at = datetime.now(UTC)
            record = RouteRecord.of(row)
        self._view.invalidate()
        return record

    async def set_status(self, route_id: str, status: str) -> RouteRecord | None:
        async with self._db.session() as s:
            row = await s.get(RouteRow, route_id)
            if row is None:
                return None
            row.status = status
            row.updated_at = datetime.now(UTC)
            record = RouteRecord.of(row)
        self._view.invalidate()
        return record

    async def _lock(self, s: AsyncSession) -> None:
        if self._db.dialect == "postgresql":
            await s.execute(text("LOCK TABLE routing_routes IN EXCLUSIVE MODE"))

    async def _placeholders(self, s: AsyncSession) -> list[RouteRow]:
        """Every route in order, each order turned into a negative placeholder (and the table locked)."""
        await self._lock(s)
        await s.execute(update(RouteRow).values(position=-RouteRow.position))
        return list(await s.scalars(select(RouteRow).order_by(RouteRow.position.desc(), RouteRow.created_at)))

    @staticmethod
    def _place(rows: list[RouteRow]) -> None:
        for place, row in enumerate(rows, start=1):
            row.position = place

    async def set_order(self, route_id: str, order: int) -> RouteRecord | None:
        async with self._changing, self._db.session() as s:
            rows = await self._placeholders(s)
            moved = next((r for r in rows if r.id == route_id), None)
            if moved is None:
                self._place(rows)
                return None
            rows.remove(moved)
            rows.insert(min(order, len(rows) + 1) - 1, moved)
            self._place(rows)
            moved.updated_at = datetime.now(UTC)
            await s.flush()
            record = RouteRecord.of(moved)
        self._view.invalidate()
        return record

    async def delete(self, route_id: str) -> RouteRecord | None:
        async with self._changing, self._db.session() as s:
            rows = await self._placeholders(s)
            gone = next((r for r in rows if r.id == route_id), None)
            record = None
            if gone is not None:
                record = replace(RouteRecord.of(gone), order=rows.index(gone) + 1)
                rows.remove(gone)
                await s.delete(gone)
                await s.flush()
            self._place(rows)
        self._view.invalidate()
        return record


SORT_COLUMNS = {
    "ENDPOINT_TYPE": RoutingRecordingRow.endpoint_type,
    "ROUTE_ID": RoutingRecordingRow.route_id,
    "CORRELATION_ID": RoutingRecordingRow.correlation_id,
    "START_TIME": RoutingRecordingRow.start_time,
    "END_TIME": RoutingRecordingRow.end_time,
}


class SqlRoutingRecordings:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, row: RecordingRow) -> None:
        async with self._db.session() as s:
            s.add(
                RoutingRecordingRow(
                    file_id=row.file_id,
                    call_id=row.call_id,
                    correlation_id=row.correlation_id,
                    route_id=row.route_id,
                    route_name=row.route_name,
                    endpoint_type=row.endpoint_type,
                    address=row.address,
                    sip_trunk_id=row.sip_trunk_id,
                    path=row.path,
                    file_format=row.file_format,
                    size=row.size,
                    duration=row.duration,
                    custom_data=dict(row.custom_data),
                    start_time=row.start_time,
                    end_time=row.end_time,
                )
            )

    @staticmethod
    def _conditions(where: RecordingFilter) -> list[Any]:
        r = RoutingRecordingRow
        conditions: list[Any] = []
        for column, value in (
            (r.endpoint_type, where.endpoint_type),
            (r.sip_trunk_id, where.sip_trunk_id),
            (r.route_id, where.route_id),
            (r.route_name, where.route_name),
            (r.correlation_id, where.correlation_id),
        ):
            if value is not None:
                conditions.append(column == value)
        for kind, value in (
            ("PHONE_OR_WHATSAPP", where.phone_number),
            ("SIP", where.sip_username),
            ("WEBRTC", where.webrtc_identity),
        ):
            if value is None:
                continue
            conditions.append(r.address == value)
            if kind == "PHONE_OR_WHATSAPP":
                conditions.append(r.endpoint_type.in_(("PHONE", "WHATSAPP", "VIBER")))
            else:
                conditions.append(r.endpoint_type == kind)
        if where.start_after is not None:
            conditions.append(r.end_time >= where.start_after)
        if where.start_before is not None:
            conditions.append(r.end_time <= where.start_before)
        return conditions

    async def search(
        self, where: RecordingFilter, *, sort_by: str, descending: bool, page: int, size: int
    ) -> tuple[Sequence[Sequence[RecordingRow]], int]:
        r = RoutingRecordingRow
        conditions = self._conditions(where)
        column = SORT_COLUMNS.get(sort_by, r.end_time)
        key = func.max(column) if descending else func.min(column)
        groups = select(r.correlation_id, key.label("key")).where(*conditions).group_by(r.correlation_id)
        async with self._db.session() as s:
            total = await s.scalar(select(func.count()).select_from(groups.subquery())) or 0
            ordered = groups.order_by(key.desc() if descending else key.asc(), r.correlation_id)
            ids = [row.correlation_id for row in await s.execute(ordered.offset(page * size).limit(size))]
            rows = await s.scalars(
                select(r).where(r.correlation_id.in_(ids), *conditions).order_by(r.end_time)
            )
            found: dict[str, list[RecordingRow]] = {correlation: [] for correlation in ids}
            for row in rows:
                found[row.correlation_id].append(RecordingRow.of(row))
        return list(found.values()), total

    async def file(self, file_id: str) -> RecordingRow | None:
        async with self._db.session() as s:
            row = await s.get(RoutingRecordingRow, file_id)
            return RecordingRow.of(row) if row is not None else None

    async def delete(self, correlation_id: str) -> Sequence[RecordingRow]:
        r = RoutingRecordingRow
        async with self._db.session() as s:
            rows = [
                RecordingRow.of(row)
                for row in await s.scalars(select(r).where(r.correlation_id == correlation_id))
            ]
            await s.execute(delete(r).where(r.correlation_id == correlation_id))
        return rows
