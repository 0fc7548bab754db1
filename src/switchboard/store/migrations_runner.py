"""Alembic from code: `migrate(url)` at server start, `regenerate_initial()` while the schema is young.

python -m switchboard.store upgrade [URL]   # upgrade to head (default: $DATABASE_URL)
python -m switchboard.store regenerate      # rewrite the initial revision from the models
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.store.base import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""Shipped inside the package, so it is found the same way from a checkout and from an install."""
FILE_TEMPLATE = "v%%(rev)s_%%(slug)s"
INITIAL_REVISION = "0001"
POST_WRITE_HOOKS = {
    "hooks": "ruff_fix, ruff_format",
    "ruff_fix.type": "module",
    "ruff_fix.module": "ruff",
    "ruff_fix.options": "check --fix --quiet REVISION_SCRIPT_FILENAME",
    "ruff_format.type": "module",
    "ruff_format.module": "ruff",
    "ruff_format.options": "format --quiet REVISION_SCRIPT_FILENAME",
}
"""Revisions come out ruff-formatted and lint-clean (alembic.ini repeats these for the `alembic` CLI)."""
TABLE_MODULES = ("switchboard.store.tables", "switchboard.store.calls_api", "switchboard.store.routing")
"""Every module that defines tables on `Base`; a missing one (not written yet) is skipped."""


def target_metadata() -> MetaData:
    """`Base.metadata` after importing every table module."""
    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base.metadata


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config that needs no alembic.ini: script location from the package, `url` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("path_separator", "os")
    for name, value in POST_WRITE_HOOKS.items():
        config.set_section_option("post_write_hooks", name, value)
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _with_connection(url: str, config: Config, run: object) -> None:
    engine = create_async_engine(url, hide_parameters=True)
    try:
        async with engine.begin() as connection:

            def in_sync(sync_connection: Connection) -> None:
                config.attributes["connection"] = sync_connection
                assert callable(run)
                run(config)

            await connection.run_sync(in_sync)
    finally:
        await engine.dispose()


async def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` (sqlite+aiosqlite or postgresql+asyncpg) to `revision` (the newest
    by default)."""
    config = alembic_config(url)
    await _with_connection(url, config, lambda cfg: command.upgrade(cfg, revision))


async def regenerate_initial(message: str = "initial schema") -> Path:
    """Rewrite the initial revision by autogenerating against an empty SQLite database.

    Only for while there is a single revision: it deletes every existing revision file first.
    """
    versions = MIGRATIONS / "versions"
    existing = sorted(versions.glob("*.py"))
    if len(existing) > 1:
        raise RuntimeError(
            f"{len(existing)} revisions exist; add a new one instead: alembic revision --autogenerate -m ..."
        )
    for old in existing:
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'empty.db'}"
        config = alembic_config(url)
        await _with_connection(
            url,
            config,
            lambda cfg: command.revision(cfg, message=message, autogenerate=True, rev_id=INITIAL_REVISION),
        )
    (created,) = versions.glob("*.py")
    return created
