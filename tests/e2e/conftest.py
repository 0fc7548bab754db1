from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.platform import Platform, running_platform


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path) as p:
        yield p
