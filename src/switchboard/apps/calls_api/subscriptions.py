"""Which subscriptions want which events: a cached view of the subscriptions table.

Every call event asks "who wants this?", so the table is read once into memory and read again only
after a subscription changes through this server, or when the view is older than `max_age_s` (so a
change made through another node takes effect within that time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from switchboard.store.base import Database
from switchboard.store.calls_api import SubscriptionRow


@dataclass(frozen=True, slots=True)
class Target:
    id: str
    url: str
    events: frozenset[str]
    configuration_ids: frozenset[str]
    profile: dict[str, Any]


class SubscriptionIndex:
    def __init__(
        self, db: Database, *, max_age_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._max_age = max_age_s
        self._clock = clock
        self._targets: list[Target] | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._targets = None

    async def _current(self) -> list[Target]:
        if self._targets is None or self._clock() - self._loaded_at > self._max_age:
            loaded_at = self._clock()
            async with self._db.session() as s:
                rows = await s.scalars(select(SubscriptionRow).order_by(SubscriptionRow.created_at))
                targets = [_target(row) for row in rows]
            self._targets, self._loaded_at = targets, loaded_at
        return self._targets

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
