"""The database: one async SQLAlchemy engine, the declarative base every table uses, sessions, and the
group commit (`write`) that the hot writes (calls, CDRs, the outbox) go through."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import Executable, Insert, MetaData, Table, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from switchboard.store.writes import AsyncExecutor, GroupCommit, Outcome, SqliteThreadExecutor, Step

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
        parsed = make_url(url)
        in_memory = parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
        self._executor: AsyncExecutor | SqliteThreadExecutor = (
            SqliteThreadExecutor(parsed, _sqlite_pragmas)
            if self.dialect == "sqlite" and not in_memory
            else AsyncExecutor(self.engine)
        )
        self._writes = GroupCommit(self._executor)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success."""
        async with self._sessions() as session, session.begin():
            yield session

    async def write(self, *steps: Step) -> list[Outcome]:
        """Run `steps` in order in one transaction, grouped with the other writes queued meanwhile
        (`store.writes`); returns their outcomes once committed."""
        return await self._writes.write(*steps)

    async def read(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Rows (values as attributes named by column key) of a Core query run in the group commit's queue,
        after every write queued before it: on a hot path this costs less than a session (on SQLite, one
        hop to the writer thread)."""
        (outcome,) = await self._writes.write(Step(statement, params))
        return outcome.rows

    async def create_all(self) -> None:
        """Create every table without Alembic (tests and throw-away databases; servers use `migrate`)."""
        from switchboard.store.migrations_runner import target_metadata

        async with self.engine.begin() as connection:
            await connection.run_sync(target_metadata().create_all)

    async def close(self) -> None:
        await self._writes.drain()
        await self._executor.close()
        await self.engine.dispose()


def upsert(dialect: str, model: type[Base], *, key: Collection[str], update: Collection[str] = ()) -> Insert:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET update` (or `DO NOTHING` when `update` is empty), its
    values given when it is executed.

    One atomic statement on both SQLite and PostgreSQL, so concurrent writers never race a select. Build it
    once and execute it with parameters: building one costs far more than running it.
    """
    table = cast(Table, model.__table__)
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        if not update:
            return pg.on_conflict_do_nothing(index_elements=list(key))
        return pg.on_conflict_do_update(
            index_elements=list(key), set_={name: pg.excluded[name] for name in update}
        )
    if dialect == "sqlite":
        lite = sqlite.insert(table)
        if not update:
            return lite.on_conflict_do_nothing(index_elements=list(key))
        return lite.on_conflict_do_update(
            index_elements=list(key), set_={name: lite.excluded[name] for name in update}
        )
    raise NotImplementedError(f"upserts are implemented for sqlite and postgresql, not {dialect}")


def insert_on_conflict(
    dialect: str,
    model: type[Base],
    values: Mapping[str, object],
    *,
    key: Collection[str],
    update: Collection[str] = (),
) -> Insert:
    """`upsert` with its values bound (for writes off the hot path)."""
    return upsert(dialect, model, key=key, update=update).values(dict(values))
