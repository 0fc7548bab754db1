"""Empty databases for tests: a SQLite file, or a fresh PostgreSQL database dropped afterwards
(skipped with the reason when PostgreSQL is not reachable)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_ASYNC = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def _pg_admin() -> Any:
    import asyncpg  # type: ignore[import-untyped]

    try:
        return await asyncio.wait_for(asyncpg.connect(PG_ADMIN), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {exc!r}")


@contextlib.asynccontextmanager
async def empty_database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
        return
    admin = await _pg_admin()
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ASYNC.format(name=name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
