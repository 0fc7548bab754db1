"""The event bus: how events of the core reach applications.

Handlers are awaited in `publish`, in subscription order, so an application that stores an event (the
Calls API's outbox) has stored it before the action that caused it returns. A durable handler's failure
is raised to the publisher as `DurableDeliveryFailed` (the action fails rather than its event being lost;
the publisher gives the event to that handler again later); another handler's failure is logged and does
not keep the event from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from switchboard.core.events import CallEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[CallEvent], Awaitable[None]]


class DurableDeliveryFailed(Exception):
    """A durable handler could not store an event; `handlers` are the ones to give it to again."""

    def __init__(self, error: Exception, handlers: tuple[EventHandler, ...]) -> None:
        super().__init__(str(error))
        self.error = error
        self.handlers = handlers


class EventBus(Protocol):
    def subscribe(self, handler: EventHandler, *, durable: bool = False) -> None: ...

    async def publish(self, event: CallEvent) -> None:
        """Give `event` to every handler; raises `DurableDeliveryFailed` if a durable one failed."""

    async def redeliver(self, event: CallEvent, handlers: tuple[EventHandler, ...]) -> None:
        """Give `event` again to the durable `handlers` that failed it."""


class InProcessEventBus:
    def __init__(self) -> None:
        self._handlers: list[tuple[EventHandler, bool]] = []

    def subscribe(self, handler: EventHandler, *, durable: bool = False) -> None:
        self._handlers.append((handler, durable))

    async def publish(self, event: CallEvent) -> None:
        await self._deliver(event, self._handlers)

    async def redeliver(self, event: CallEvent, handlers: tuple[EventHandler, ...]) -> None:
        await self._deliver(event, [(handler, True) for handler in handlers])

    async def _deliver(self, event: CallEvent, handlers: list[tuple[EventHandler, bool]]) -> None:
        failed: list[EventHandler] = []
        first: Exception | None = None
        for handler, durable in handlers:
            try:
                await handler(event)
            except Exception as exc:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
                if durable:
                    failed.append(handler)
                    first = first or exc
        if first is not None:
            raise DurableDeliveryFailed(first, tuple(failed))
