from collections.abc import AsyncIterator

import pytest

from support.control_rig import Rig, running_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running_rig() as rig:
        yield rig
