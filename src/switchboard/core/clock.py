"""Time for the core: wall-clock stamps, a monotonic clock for deadlines, and one way to wake up later.

The core never reads the time itself; unit tests pass a `ManualClock` and move it forward, so a 30 s
transfer timeout runs in microseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time (UTC) for the records."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable:
        """Run `callback` on the event loop once `monotonic()` reaches `when`."""


class LoopClock:
    """The event loop's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_at(when, callback)


@dataclass(order=True, slots=True)
class _Scheduled:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to (`advance`), running what came due on the way."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._now = 0.0
        self._queue: list[_Scheduled] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=self._now)

    def monotonic(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable:
        item = _Scheduled(when, next(self._seq), callback)
        heapq.heappush(self._queue, item)
        return item

    def advance(self, seconds: float) -> None:
        """Move forward, running every callback that comes due, in order."""
        until = self._now + seconds
        while self._queue and self._queue[0].when <= until:
            item = heapq.heappop(self._queue)
            if item.cancelled:
                continue
            self._now = max(self._now, item.when)
            item.callback()
        self._now = until


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait `seconds` on `clock` (a `ManualClock` wakes it when advanced)."""
    woke = asyncio.Event()
    handle = clock.call_at(clock.monotonic() + seconds, woke.set)
    try:
        await woke.wait()
    finally:
        handle.cancel()
