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
import contextlib
import functools
import sqlite3
import threading
from collections import OrderedDict, namedtuple
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, TypeAlias

from sqlalchemy import ClauseElement, Connection, Engine, Executable, Select, create_engine, event
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
    """What a step did: rows changed and, for a query or a statement with RETURNING, the rows returned
    (with their values as attributes named by column key)."""

    rowcount: int
    rows: list[Any]


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
    aiosqlite's own: `ThreadPoolExecutor.submit` costs more than a group's statements. Transactions are
    opened with `BEGIN IMMEDIATE` on the driver: a deferred one that read first could fail with
    SQLITE_BUSY on its first write instead of waiting for the lock.
    """

    def __init__(self, url: URL, on_connect: Callable[[Any, Any], None]) -> None:
        self._engine: Engine = create_engine(url.set(drivername="sqlite"), poolclass=NullPool)
        event.listen(self._engine, "connect", on_connect)
        event.listen(self._engine, "connect", _autocommit_driver)
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
            return self._transaction(
                connection, [functools.partial(self._run, connection, w) for w in writes]
            )
        except Exception:
            if len(writes) == 1:
                raise
        return [self._alone(connection, steps) for steps in writes]

    def _alone(self, connection: Connection, steps: Write) -> Result:
        try:
            (outcomes,) = self._transaction(connection, [functools.partial(self._run, connection, steps)])
            return outcomes
        except Exception as exc:
            return exc

    @staticmethod
    def _transaction(connection: Connection, work: list[Callable[[], list[Outcome]]]) -> list[Result]:
        """Run `work` in one transaction: committed if all of it succeeds, else rolled back and raised.
        The driver's own errors (a COMMIT that finds the disk full) are raised as SQLAlchemy's."""
        driver = _driver(connection)
        try:
            if driver.in_transaction:  # a rollback that failed before: never build on its leftovers
                driver.rollback()
            driver.execute("BEGIN IMMEDIATE")
            try:
                results: list[Result] = [run() for run in work]
                SqliteThreadExecutor._end(connection, commit=True)
            except BaseException:
                with contextlib.suppress(Exception):
                    SqliteThreadExecutor._end(connection, commit=False)
                raise
        except sqlite3.Error as exc:
            raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
        return results

    @staticmethod
    def _end(connection: Connection, *, commit: bool) -> None:
        """COMMIT or ROLLBACK; through SQLAlchemy when one of its executions began its own bookkeeping."""
        if connection.in_transaction():
            connection.commit() if commit else connection.rollback()
        elif commit:
            _driver(connection).commit()
        else:
            _driver(connection).rollback()

    def _run(self, connection: Connection, steps: Write) -> list[Outcome]:
        return [self._step(connection, step) for step in steps]

    def _step(self, connection: Connection, step: Step) -> Outcome:
        prepared = self._prepared(step)
        if prepared is None:
            return _outcome(connection.execute(step.statement, step.params))
        driver = _driver(connection)
        try:
            if step.params is None or isinstance(step.params, Mapping):
                cursor = driver.execute(prepared.sql, prepared.positional(step.params or {}))
            else:
                cursor = driver.executemany(prepared.sql, [prepared.positional(p) for p in step.params])
            rows = prepared.rows(cursor.fetchall()) if prepared.row_type is not None else []
        except sqlite3.Error as exc:
            # the error SQLAlchemy would have raised (IntegrityError, OperationalError, ...)
            raise DBAPIError.instance(prepared.sql, step.params, exc, sqlite3.Error) from exc
        return Outcome(cursor.rowcount, rows)

    def _prepared(self, step: Step) -> _Prepared | None:
        params = step.params
        many = params is not None and not isinstance(params, Mapping)
        first: Mapping[str, Any] = {}
        if params is not None:
            if isinstance(params, Mapping):
                first = params
            elif params:
                first = params[0]
            else:
                return None
        key = (id(step.statement), tuple(first))
        cached = self._cache.get(key)
        if cached is not None and cached[0] is step.statement:
            self._cache.move_to_end(key)
            prepared = cached[1]
        else:
            prepared = _Prepared.of(step.statement, list(first), self._engine.dialect)
            self._cache[key] = (step.statement, prepared)
            if len(self._cache) > PREPARED_CACHE_SIZE:
                self._cache.popitem(last=False)
        if prepared is not None and many and prepared.row_type is not None:
            return None  # executemany returns no rows on the driver; SQLAlchemy batches these itself
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
    """A Core statement compiled once for the writer's connection and run on the driver directly:
    SQLAlchemy's per-execution work (cache key, execution context, result) costs several times what
    SQLite spends on a small statement. Parameters go through their column types' bind processors and
    returned values through their result processors, as SQLAlchemy would do."""

    sql: str
    compiled: SQLCompiler
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    row_type: Callable[..., Any] | None
    """Rows (named by column key) for a SELECT or RETURNING; None when the statement returns none."""
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Executable, keys: list[str], dialect: Dialect) -> _Prepared | None:
        """`statement` prepared for parameters with `keys`, or None when it needs SQLAlchemy's execution
        (Python-side defaults, expanding parameters, ORM entities, anything but INSERT, UPDATE, DELETE
        and a Core SELECT)."""
        if not isinstance(statement, ClauseElement):
            return None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            return None
        if compiled.insert_prefetch or compiled.update_prefetch:
            return None
        columns: list[Any]
        if compiled.isinsert or compiled.isupdate or compiled.isdelete:
            columns = list(compiled.effective_returning or [])
        elif isinstance(statement, Select):
            columns = list(statement.selected_columns)
        else:
            return None
        binds = [compiled.binds[name] for name in compiled.positiontup]
        if any(bind.expanding or bind.literal_execute for bind in binds):
            return None
        fields: list[str] = []
        for column in columns:
            name = getattr(column, "key", None)
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                return None
            fields.append(name)
        return cls(
            sql=compiled.string,
            compiled=compiled,
            names=tuple(compiled.positiontup),
            # dialect_impl: a generic type's processors are its dialect's (SQLite's DATETIME formats)
            processors=tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
            row_type=namedtuple("Row", fields) if fields else None,
            results=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
            ),
        )

    def positional(self, params: Mapping[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        return [
            value if process is None else process(value)
            for value, process in zip((values[name] for name in self.names), self.processors, strict=True)
        ]

    def rows(self, fetched: list[tuple[Any, ...]]) -> list[Any]:
        make = self.row_type
        assert make is not None
        results = self.results
        return [
            make(
                *[
                    value if process is None else process(value)
                    for value, process in zip(row, results, strict=True)
                ]
            )
            for row in fetched
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
    """The driver opens no transaction by itself: the writer issues `BEGIN IMMEDIATE`."""
    dbapi_connection.isolation_level = None


def _driver(connection: Connection) -> sqlite3.Connection:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver
