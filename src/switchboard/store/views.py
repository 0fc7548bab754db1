"""A cached read of a small table: read whole, kept until invalidated or `max_age_s` old.

For tables that every call consults and that rarely change (senders, subscriptions): one node's own
changes invalidate the view at once; another node's take effect within `max_age_s`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CachedView(Generic[T]):
    def __init__(
        self,
        load: Callable[[], Awaitable[list[T]]],
        *,
        max_age_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age_s
        self._clock = clock
        self._items: list[T] | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._items = None

    async def items(self) -> list[T]:
        if self._items is None or self._clock() - self._loaded_at > self._max_age:
            loaded_at = self._clock()
            items = await self._load()
            self._items, self._loaded_at = items, loaded_at
        return self._items
