"""Ordered, re-entrant publication of a call's events.

A change to a call queues its events while the call's lock is held; `flush` publishes them once the lock
is released, oldest first, one call's events never overtaking each other. Handlers may act on the same
call: their new events join the queue that is being published (a handler never waits for itself), and
on other calls: a handler never waits for another task's publication either (that task may be waiting
for this one); its events go out with that task's. Any other task that flushes while another task
publishes waits until its own events are out, so an action returns only once its events are stored. A
durable handler's failure is raised to the flush that the event belongs to; the event is kept and given
to that handler again, before anything newer of the call, at the call's next flush, and by `retry_failed`
with backoff meanwhile (a call that ended has no next flush): nothing is lost when storing fails for a while.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from switchboard.core.bus import DurableDeliveryFailed, EventBus, EventHandler
from switchboard.core.clock import Clock, sleep
from switchboard.core.events import CallEvent


@dataclass(slots=True, eq=False)
class _Item:
    event: CallEvent
    done: bool = False
    error: BaseException | None = None


@dataclass(slots=True)
class _Stream:
    pending: deque[_Item] = field(default_factory=deque)
    failed: deque[tuple[CallEvent, tuple[EventHandler, ...]]] = field(default_factory=deque)
    """Events a durable handler could not store: given to it again before anything newer."""
    publisher: asyncio.Task[object] | None = None
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (then replaced) whenever an event is out or the publishing task stops."""

    def wake(self) -> None:
        self.progress.set()
        self.progress = asyncio.Event()


class EventPublisher:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._streams: dict[str, _Stream] = {}
        self._publishing: set[asyncio.Task[Any] | None] = set()
        """Tasks running handlers now (inside a `_drain`)."""

    def queue(self, key: str, event: CallEvent) -> None:
        """Add `event` to the stream `key` (a call id); it goes out at the next `flush(key)`."""
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
        stream.pending.append(_Item(event))

    async def flush(self, key: str) -> None:
        stream = self._streams.get(key)
        if stream is None:
            return
        mine = list(stream.pending)
        current = asyncio.current_task()
        if stream.publisher is current or (stream.publisher is not None and current in self._publishing):
            return
        # Publish, or wait for the task that does; take over if that task stops before our events are
        # out (it was cancelled).
        # Nothing of ours to publish: give what a durable handler failed to it again, once.
        retry = not mine and bool(stream.failed)
        tried = False
        while (retry and not tried) or not all(item.done for item in mine):
            if stream.publisher is None:
                tried = True
                stream.publisher = current
                outermost = current not in self._publishing
                self._publishing.add(current)
                try:
                    blocked = await self._drain(stream)
                finally:
                    if outermost:
                        self._publishing.discard(current)
                    stream.publisher = None
                    stream.wake()
                    if not stream.pending and not stream.failed and self._streams.get(key) is stream:
                        del self._streams[key]
                if blocked is not None:
                    raise blocked
            else:
                await stream.progress.wait()
        errors = [item.error for item in mine if item.error is not None]
        if errors:
            raise errors[0]

    async def retry_failed(self, clock: Clock, *, first_delay: float = 1.0, max_delay: float = 30.0) -> None:
        """Until cancelled, give events a durable handler could not store to it again, waiting
        `first_delay` between rounds, doubled (up to `max_delay`) while storing keeps failing."""
        delay = first_delay
        while True:
            await sleep(clock, delay)
            stored = True
            for key in [key for key, stream in self._streams.items() if stream.failed]:
                try:
                    await self.flush(key)
                except Exception:
                    stored = False
            delay = first_delay if stored else min(delay * 2, max_delay)

    async def _drain(self, stream: _Stream) -> Exception | None:
        """Publish what is pending, in order; the error that stops it while an event cannot be stored."""
        while stream.failed:
            event, handlers = stream.failed[0]
            try:
                await self._bus.redeliver(event, handlers)
            except DurableDeliveryFailed as exc:
                stream.failed[0] = (event, exc.handlers)
                return exc.error
            stream.failed.popleft()
            stream.wake()
        while stream.pending and not stream.failed:
            item = stream.pending.popleft()
            try:
                await self._bus.publish(item.event)
            except DurableDeliveryFailed as exc:
                item.error = exc.error
                stream.failed.append((item.event, exc.handlers))
            except Exception as exc:
                item.error = exc
            finally:
                item.done = True
                stream.wake()
        return None
