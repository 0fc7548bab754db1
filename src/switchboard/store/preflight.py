"""Before a server says it listens: can the database be reached, and brought to the newest schema?

`prepare_database(url)` raises `DatabaseUnavailable` with one line a person can act on, naming the URL
with its password hidden, instead of a failing start-up deep inside the web server.
"""

from __future__ import annotations

import asyncio
import os

from alembic.util.exc import CommandError
from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.errors import SwitchboardError
from switchboard.store.migrations_runner import migrate

CONNECT_TIMEOUT_S = 10.0


class DatabaseUnavailable(SwitchboardError):
    """The database cannot be reached or migrated; the message names it (without its password)."""

    status_hint = 503


def display_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError):
        return str(exc.orig).strip() or type(exc.orig).__name__
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def _ping(url: str) -> None:
    engine = create_async_engine(url, hide_parameters=True)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def prepare_database(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Connect to the database at `url`, then migrate it to the newest revision."""
    shown = display_url(url)
    try:
        await asyncio.wait_for(_ping(url), connect_timeout_s)
    except TimeoutError:
        reason = f"no answer within {connect_timeout_s:g} s"
        raise DatabaseUnavailable(f"cannot reach the database {shown}: {reason}") from None
    except (OSError, DBAPIError) as exc:
        raise DatabaseUnavailable(f"cannot reach the database {shown}: {_reason(exc)}") from None
    try:
        await migrate(url)
    except (DBAPIError, CommandError) as exc:
        raise DatabaseUnavailable(f"cannot migrate the database {shown}: {_reason(exc)}") from None
