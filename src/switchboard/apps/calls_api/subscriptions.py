"""Which subscriptions want which events: a cached view (`store.views.CachedView`) of the table.

Every call event asks "who wants this?", so the table is read once into memory and read again only
after a subscription changes through this server, or when the view is older than `max_age_s` (so a
change made through another node takes effect within that time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from switchboard.store.base import Database
from switchboard.store.calls_api import SubscriptionRow
from switchboard.store.views import CachedView


@dataclass(frozen=True, slots=True)
class Target:
    id: str
    url: str
    events: frozenset[str]
    configuration_ids: frozenset[str]
    profile: dict[str, Any]


class SubscriptionIndex:
    def __init__(self, db: Database, *, max_age_s: float = 5.0) -> None:
        self._db = db
        self._view = CachedView(self._load, max_age_s=max_age_s)

    def invalidate(self) -> None:
        self._view.invalidate()

    async def _load(self) -> list[Target]:
        async with self._db.session() as s:
            rows = await s.scalars(select(SubscriptionRow).order_by(SubscriptionRow.created_at))
            return [_target(row) for row in rows]

    async def _current(self) -> list[Target]:
        return await self._view.items()

    async def matching(self, calls_configuration_id: str | None, event_type: str) -> list[Target]:
        """Subscriptions whose criteria name `calls_configuration_id` and whose events hold the type."""
        if not calls_configuration_id:
            return []
        return [
            t
            for t in await self._current()
            if event_type in t.events and calls_configuration_id in t.configuration_ids
        ]

    async def profile(self, subscription_id: str) -> dict[str, Any] | None:
        """The stored profile (with secrets) of a subscription, for signing deliveries."""
        for target in await self._current():
            if target.id == subscription_id:
                return target.profile
        return None


def _target(row: SubscriptionRow) -> Target:
    profile: dict[str, Any] = json.loads(row.profile)
    criteria = json.loads(row.criteria)
    return Target(
        id=row.id,
        url=str(profile["webhook"]["notifyUrl"]),
        events=frozenset(json.loads(row.events)),
        configuration_ids=frozenset(
            str(c["callsConfigurationId"]) for c in criteria if c.get("callsConfigurationId")
        ),
        profile=profile,
    )
