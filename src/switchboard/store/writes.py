"""Group commit: the writes that arrive while a transaction commits go into the next transaction together.

A write is a few statements that must be atomic together (a call's row and its CDR). `GroupCommit.write`
queues it and returns once the transaction holding it has committed, so a caller's "stored before
acknowledged" holds as before; but at most one transaction is in flight, and everything queued meanwhile
shares the next one. Under load, transactions get bigger instead of more numerous. Writes commit in the
order they were queued. If a statement fails, its group is rolled back and each write of it is retried in a
transaction of its own, so only the write at fault sees the error.

How a group runs is the `Executor`'s business. SQLite (a file): one call into a thread that holds its own
connection (`BEGIN IMMEDIATE` ... `COMMIT`), i.e. one thread hop per group instead of several per
statement through aiosqlite. PostgreSQL, and SQLite in memory: a transaction on the async engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, TypeAlias

from sqlalchemy import ClauseElement, Connection, Engine, Executable, Row, create_engine, event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler

Params: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a write, with its parameters (a list of them: executemany)."""

    statement: Executable
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a step did: rows changed and, for a statement with RETURNING, the rows returned."""

    rowcount: int
    rows: list[Row[Any]]


Write: TypeAlias = Sequence[Step]
Result: TypeAlias = list[Outcome] | Exception
"""A write's outcomes, one per step, or the exception that failed it."""
Executor: TypeAlias = Callable[[list[Write]], Awaitable[list[Result]]]


class GroupCommit:
    def __init__(self, executor: Executor) -> None:
        self._execute = executor
        self._queue: list[tuple[Write, asyncio.Future[list[Outcome]]]] = []
        self._committing: asyncio.Task[None] | None = None

    async def write(self, *steps: Step) -> list[Outcome]:
        """Run `steps` in one transaction (shared with other writes); their outcomes once committed."""
        done: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._queue.append((steps, done))
        if self._committing is None:
            self._start()
        return await done

    def _start(self) -> None:
        group, self._queue = self._queue, []
        self._committing = asyncio.get_running_loop().create_task(self._commit(group))

    async def _commit(self, group: list[tuple[Write, asyncio.Future[list[Outcome]]]]) -> None:
        results: list[Result]
        try:
            results = await self._execute([steps for steps, _ in group])
        except Exception as exc:
            results = [exc] * len(group)
        except BaseException:
            self._committing = None
            for _, done in group:
                done.cancel()
            raise
        self._committing = None
        if self._queue:
            self._start()
        for (_, done), result in zip(group, results, strict=True):
            if done.done():
                continue
            if isinstance(result, Exception):
                done.set_exception(result)
            else:
                done.set_result(result)

    async def drain(self) -> None:
        """Return once every queued write is committed (or failed)."""
        while self._committing is not None:
            await asyncio.shield(self._committing)


# -- executors ----------------------------------------------------------------------------------------


def _outcome(result: Any) -> Outcome:
    rows = list(result.all()) if result.returns_rows else []
    return Outcome(int(result.rowcount), rows)


class AsyncExecutor:
    """Groups as transactions on the async engine (PostgreSQL through asyncpg; in-memory SQLite)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, writes: list[Write]) -> list[Result]:
        try:
            async with self._engine.begin() as connection:
                return [await self._run(connection, steps) for steps in writes]
        except Exception:
            if len(writes) == 1:
                raise
        return [await self._alone(steps) for steps in writes]

    async def _alone(self, steps: Write) -> Result:
        try:
            async with self._engine.begin() as connection:
                return await self._run(connection, steps)
        except Exception as exc:
            return exc

    @staticmethod
    async def _run(connection: AsyncConnection, steps: Write) -> list[Outcome]:
        return [_outcome(await connection.execute(step.statement, step.params)) for step in steps]

    async def close(self) -> None:
        pass


class SqliteThreadExecutor:
    """Groups as transactions in one thread that owns a synchronous connection to the SQLite file.

    The thread takes work from a queue and hands results back with `call_soon_threadsafe`, like
    aiosqlite's own: `ThreadPoolExecutor.submit` costs more than a group's statements.
    """

    def __init__(self, url: URL, on_connect: Callable[[Any, Any], None]) -> None:
        self._engine: Engine = create_engine(url.set(drivername="sqlite"), poolclass=NullPool)
        event.listen(self._engine, "connect", on_connect)
        event.listen(self._engine, "connect", _autocommit_driver)
        event.listen(self._engine, "begin", _begin_immediate)
        self._jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None
        self._cache: OrderedDict[tuple[int, tuple[str, ...]], tuple[Executable, _Prepared | None]] = (
            OrderedDict()
        )

    async def __call__(self, writes: list[Write]) -> list[Result]:
        if self._thread is None:
            # a daemon: an unclosed Database must not keep the process alive; a transaction cut short
            # by exit is rolled back by SQLite, and nobody was told it was stored
            self._thread = threading.Thread(target=self._work, name="sqlite-writer", daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Result]] = loop.create_future()
        self._jobs.put(_Job(loop, done, writes))
        return await done

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                results = self._run_group(job.writes)
            except BaseException as exc:
                job.loop.call_soon_threadsafe(_settle, job.done, None, exc)
            else:
                job.loop.call_soon_threadsafe(_settle, job.done, results, None)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run_group(self, writes: list[Write]) -> list[Result]:
        if self._connection is None:
            self._connection = self._engine.connect()
        connection = self._connection
        try:
            with connection.begin():
                return [self._run(connection, steps) for steps in writes]
        except Exception:
            if len(writes) == 1:
                raise
        return [self._alone(connection, steps) for steps in writes]

    def _alone(self, connection: Connection, steps: Write) -> Result:
        try:
            with connection.begin():
                return self._run(connection, steps)
        except Exception as exc:
            return exc

    def _run(self, connection: Connection, steps: Write) -> list[Outcome]:
        return [self._step(connection, step) for step in steps]

    def _step(self, connection: Connection, step: Step) -> Outcome:
        prepared = self._prepared(step)
        if prepared is None:
            return _outcome(connection.execute(step.statement, step.params))
        driver = connection.connection.driver_connection
        assert driver is not None and step.params is not None
        try:
            if isinstance(step.params, Mapping):
                cursor = driver.execute(prepared.sql, prepared.positional(step.params))
            else:
                cursor = driver.executemany(prepared.sql, [prepared.positional(p) for p in step.params])
        except sqlite3.Error as exc:
            # the error SQLAlchemy would have raised (IntegrityError, OperationalError, ...)
            raise DBAPIError.instance(prepared.sql, step.params, exc, sqlite3.Error) from exc
        return Outcome(cursor.rowcount, [])

    def _prepared(self, step: Step) -> _Prepared | None:
        params = step.params
        first = params if isinstance(params, Mapping) else (params[0] if params else None)
        if first is None:
            return None
        key = (id(step.statement), tuple(first))
        cached = self._cache.get(key)
        if cached is not None and cached[0] is step.statement:
            self._cache.move_to_end(key)
            return cached[1]
        prepared = _Prepared.of(step.statement, list(first), self._engine.dialect)
        self._cache[key] = (step.statement, prepared)
        if len(self._cache) > PREPARED_CACHE_SIZE:
            self._cache.popitem(last=False)
        return prepared

    async def close(self) -> None:
        """Stop the thread once its queue is done (it closes its connection), then the engine."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, thread.join)
        self._engine.dispose()


PREPARED_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A plain DML statement compiled once for the writer's connection, run on the driver directly:
    SQLAlchemy's per-execution work (cache key, execution context, result) costs several times what
    SQLite spends on such a statement. Parameters go through their column types' bind processors, as
    SQLAlchemy would send them."""

    sql: str
    compiled: SQLCompiler
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Executable, keys: list[str], dialect: Dialect) -> _Prepared | None:
        """`statement` prepared for parameters with `keys`, or None when it needs SQLAlchemy's execution
        (not an INSERT/UPDATE/DELETE, RETURNING, Python-side defaults, expanding parameters)."""
        if not isinstance(statement, ClauseElement):
            return None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            return None
        if not (compiled.isinsert or compiled.isupdate or compiled.isdelete):
            return None
        if compiled.effective_returning or compiled.insert_prefetch or compiled.update_prefetch:
            return None
        binds = [compiled.binds[name] for name in compiled.positiontup]
        if any(bind.expanding or bind.literal_execute for bind in binds):
            return None
        return cls(
            sql=compiled.string,
            compiled=compiled,
            names=tuple(compiled.positiontup),
            processors=tuple(bind.type.bind_processor(dialect) for bind in binds),
        )

    def positional(self, params: Mapping[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        return [
            value if process is None else process(value)
            for value, process in zip((values[name] for name in self.names), self.processors, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class _Job:
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[list[Result]]
    writes: list[Write]


def _settle(
    done: asyncio.Future[list[Result]], results: list[Result] | None, error: BaseException | None
) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        assert results is not None
        done.set_result(results)


def _autocommit_driver(dbapi_connection: Any, _record: object) -> None:
    """Let SQLAlchemy's `begin` event open the transaction, not the driver (see `_begin_immediate`)."""
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    """Take the write lock when the transaction starts: a deferred one that read first could fail with
    SQLITE_BUSY on its first write instead of waiting for the lock."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("BEGIN IMMEDIATE")
