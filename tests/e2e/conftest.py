from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.databases import KINDS, empty_database
from support.platform import Platform, running_platform


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path) as p:
        yield p


@pytest.fixture(params=KINDS)
async def platform_on_each_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Platform]:
    """The platform on SQLite, then on PostgreSQL (skipped when PostgreSQL is not reachable)."""
    async with (
        empty_database(request.param, tmp_path) as url,
        running_platform(tmp_path, database_url=url) as p,
    ):
        yield p
