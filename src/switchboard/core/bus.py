"""The event bus: how events of the core reach applications.

Handlers are awaited in `publish`, in subscription order, so an application that stores an event (the
Calls API's outbox) has stored it before the action that caused it returns. A failing handler is logged and
does not keep the event from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from switchboard.core.events import CallEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[CallEvent], Awaitable[None]]


class EventBus(Protocol):
    def subscribe(self, handler: EventHandler) -> None: ...

    async def publish(self, event: CallEvent) -> None: ...


class InProcessEventBus:
    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    async def publish(self, event: CallEvent) -> None:
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
