"""The event bus: how events of the core reach applications.

Handlers are awaited in `publish`, in subscription order, so an application that stores an event (the
Calls API's outbox) has stored it before the action that caused it returns. A durable handler's failure
is raised to the publisher (the action fails rather than its event being lost); another handler's failure
is logged and does not keep the event from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from switchboard.core.events import CallEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[CallEvent], Awaitable[None]]


class EventBus(Protocol):
    def subscribe(self, handler: EventHandler, *, durable: bool = False) -> None: ...

    async def publish(self, event: CallEvent) -> None: ...


class InProcessEventBus:
    def __init__(self) -> None:
        self._handlers: list[tuple[EventHandler, bool]] = []

    def subscribe(self, handler: EventHandler, *, durable: bool = False) -> None:
        self._handlers.append((handler, durable))

    async def publish(self, event: CallEvent) -> None:
        failure: Exception | None = None
        for handler, durable in self._handlers:
            try:
                await handler(event)
            except Exception as exc:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
                if durable and failure is None:
                    failure = exc
        if failure is not None:
            raise failure
