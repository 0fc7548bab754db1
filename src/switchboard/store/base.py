"""The database: one async SQLAlchemy engine, the declarative base every table uses, sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import Insert, MetaData, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """WAL lets readers run beside the one writer; the busy timeout makes writers queue, not fail."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Database:
    """Owns the engine; hands out sessions. `url` is a SQLAlchemy async URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, object] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, hide_parameters=True, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success."""
        async with self._sessions() as session, session.begin():
            yield session

    async def create_all(self) -> None:
        """Create every table without Alembic (tests and throw-away databases; servers use `migrate`)."""
        from switchboard.store.migrations_runner import target_metadata

        async with self.engine.begin() as connection:
            await connection.run_sync(target_metadata().create_all)

    async def close(self) -> None:
        await self.engine.dispose()


def insert_on_conflict(
    dialect: str,
    model: type[Base],
    values: Mapping[str, object],
    *,
    key: Collection[str],
    update: Collection[str] = (),
) -> Insert:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET update` (or `DO NOTHING` when `update` is empty).

    One atomic statement on both SQLite and PostgreSQL, so concurrent writers never race a select.
    """
    table = cast(Table, model.__table__)
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(dict(values))
        if not update:
            return pg.on_conflict_do_nothing(index_elements=list(key))
        return pg.on_conflict_do_update(
            index_elements=list(key), set_={name: pg.excluded[name] for name in update}
        )
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(dict(values))
        if not update:
            return lite.on_conflict_do_nothing(index_elements=list(key))
        return lite.on_conflict_do_update(
            index_elements=list(key), set_={name: lite.excluded[name] for name in update}
        )
    raise NotImplementedError(f"upserts are implemented for sqlite and postgresql, not {dialect}")
