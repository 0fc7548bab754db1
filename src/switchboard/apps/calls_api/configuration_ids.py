"""Which calls configurations exist: asked for every inbound call, so known ids are kept in memory.

A hit answers from the cached view (`store.views.CachedView`); a miss asks the table, so a configuration
created through another node is found at once. One deleted through this node is forgotten at once, one
deleted through another node within `max_age_s`.
"""

from __future__ import annotations

from sqlalchemy import select

from switchboard.store.base import Database
from switchboard.store.calls_api import CallsConfigurationRow
from switchboard.store.views import CachedView


class ConfigurationIds:
    def __init__(self, db: Database, *, max_age_s: float = 5.0) -> None:
        self._db = db
        self._view = CachedView(self._load, max_age_s=max_age_s)

    def invalidate(self) -> None:
        self._view.invalidate()

    async def _load(self) -> list[str]:
        async with self._db.session() as s:
            return list(await s.scalars(select(CallsConfigurationRow.id)))

    async def exists(self, configuration_id: str) -> bool:
        if configuration_id in await self._view.items():
            return True
        async with self._db.session() as s:
            found = await s.get(CallsConfigurationRow, configuration_id) is not None
        if found:
            self._view.invalidate()
        return found
