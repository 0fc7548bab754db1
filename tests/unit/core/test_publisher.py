import asyncio
from datetime import UTC, datetime

import pytest

from support.fakes import settle
from switchboard.core.bus import InProcessEventBus
from switchboard.core.clock import ManualClock
from switchboard.core.events import CallEvent, CallReceived
from switchboard.core.models import Call, Direction, Endpoint, EndpointType
from switchboard.core.publisher import EventPublisher


def event(call_id: str, n: int) -> CallEvent:
    call = Call(
        id=call_id,
        endpoint=Endpoint(EndpointType.WHATSAPP, phone_number="1"),
        direction=Direction.INBOUND,
        from_="1",
        to="2",
        custom_data={"n": str(n)},
    )
    return CallReceived(call=call, timestamp=datetime(2026, 1, 1, tzinfo=UTC))


def label(e: CallEvent) -> str:
    return f"{e.call_id}{e.call.custom_data['n']}"


class Handler:
    """Records what it saw; can hold an event until released, or fail on one."""

    def __init__(self, name: str, seen: list[str]) -> None:
        self.name = name
        self.seen = seen
        self.holds: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self.fails: set[str] = set()

    def hold(self, what: str) -> asyncio.Event:
        self.entered[what] = asyncio.Event()
        gate = self.holds[what] = asyncio.Event()
        return gate

    async def __call__(self, e: CallEvent) -> None:
        what = label(e)
        if what in self.entered:
            self.entered[what].set()
            await self.holds[what].wait()
        self.seen.append(f"{self.name}:{what}")
        if what in self.fails:
            raise OSError(f"could not store {what}")


def publisher_with(*handlers: tuple[Handler, bool]) -> EventPublisher:
    bus = InProcessEventBus()
    for handler, durable in handlers:
        bus.subscribe(handler, durable=durable)
    return EventPublisher(bus)


async def test_flush_publishes_the_queued_events_oldest_first() -> None:
    seen: list[str] = []
    publisher = publisher_with((Handler("h", seen), False))
    await publisher.flush("a")
    for n in range(3):
        publisher.queue("a", event("a", n))
    await publisher.flush("a")
    assert seen == ["h:a0", "h:a1", "h:a2"]
    await publisher.flush("a")
    assert seen == ["h:a0", "h:a1", "h:a2"]


async def test_a_concurrent_flush_waits_for_the_publishing_task_to_publish_its_events_in_order() -> None:
    seen: list[str] = []
    handler = Handler("h", seen)
    gate = handler.hold("a0")
    publisher = publisher_with((handler, False))

    publisher.queue("a", event("a", 0))
    first = asyncio.create_task(publisher.flush("a"))
    await handler.entered["a0"].wait()
    publisher.queue("a", event("a", 1))
    second = asyncio.create_task(publisher.flush("a"))
    await settle()
    assert not second.done(), "a flush returns only once its own events are out"
    assert seen == []

    gate.set()
    await asyncio.gather(first, second)
    assert seen == ["h:a0", "h:a1"]


async def test_a_handler_that_flushes_its_own_stream_returns_at_once_and_its_events_follow() -> None:
    seen: list[str] = []
    publisher: EventPublisher

    class Reentrant(Handler):
        async def __call__(self, e: CallEvent) -> None:
            await super().__call__(e)
            if label(e) == "a0":
                publisher.queue("a", event("a", 1))
                await publisher.flush("a")
                seen.append("flush returned")

    publisher = publisher_with((Reentrant("first", seen), False), (Handler("second", seen), False))
    publisher.queue("a", event("a", 0))
    await publisher.flush("a")
    assert seen == ["first:a0", "flush returned", "second:a0", "first:a1", "second:a1"]


async def test_streams_of_different_calls_do_not_wait_for_each_other() -> None:
    seen: list[str] = []
    handler = Handler("h", seen)
    gate = handler.hold("a0")
    publisher = publisher_with((handler, False))
    publisher.queue("a", event("a", 0))
    held = asyncio.create_task(publisher.flush("a"))
    await handler.entered["a0"].wait()

    publisher.queue("b", event("b", 0))
    await publisher.flush("b")
    assert seen == ["h:b0"]
    gate.set()
    await held
    assert seen == ["h:b0", "h:a0"]


async def test_a_durable_failure_is_raised_to_the_flush_its_event_belongs_to() -> None:
    seen: list[str] = []
    durable = Handler("store", seen)
    durable.fails.add("a1")
    gate = durable.hold("a0")
    publisher = publisher_with((durable, True))

    publisher.queue("a", event("a", 0))
    drainer = asyncio.create_task(publisher.flush("a"))
    await durable.entered["a0"].wait()
    publisher.queue("a", event("a", 1))
    waiter = asyncio.create_task(publisher.flush("a"))
    await settle()
    gate.set()

    await drainer
    with pytest.raises(OSError, match="could not store a1"):
        await waiter
    assert seen == ["store:a0", "store:a1"]


async def test_a_plain_handler_failure_is_not_raised_and_the_others_still_get_the_event() -> None:
    seen: list[str] = []
    broken = Handler("broken", seen)
    broken.fails.add("a0")
    publisher = publisher_with((broken, False), (Handler("other", seen), False))
    publisher.queue("a", event("a", 0))
    await publisher.flush("a")
    assert seen == ["broken:a0", "other:a0"]


async def test_a_waiting_flush_takes_over_when_the_publishing_task_is_cancelled() -> None:
    seen: list[str] = []
    handler = Handler("h", seen)
    handler.hold("a0")
    publisher = publisher_with((handler, False))

    publisher.queue("a", event("a", 0))
    drainer = asyncio.create_task(publisher.flush("a"))
    await handler.entered["a0"].wait()
    publisher.queue("a", event("a", 1))
    waiter = asyncio.create_task(publisher.flush("a"))
    await settle()

    drainer.cancel()
    async with asyncio.timeout(1):
        await waiter
    assert seen == ["h:a1"]


async def test_a_handler_never_waits_for_another_tasks_publication() -> None:
    seen: list[str] = []
    publisher: EventPublisher
    both_in = asyncio.Barrier(2)

    class CrossCall(Handler):
        async def __call__(self, e: CallEvent) -> None:
            await super().__call__(e)
            if label(e) in ("a0", "b0"):
                await both_in.wait()
                other = "b" if e.call_id == "a" else "a"
                publisher.queue(other, event(other, 1))
                await publisher.flush(other)
                seen.append(f"{e.call_id} handler returned")

    publisher = publisher_with((CrossCall("h", seen), False))
    publisher.queue("a", event("a", 0))
    publisher.queue("b", event("b", 0))
    async with asyncio.timeout(1):
        await asyncio.gather(publisher.flush("a"), publisher.flush("b"))
    assert sorted(seen) == sorted(
        ["h:a0", "h:b0", "a handler returned", "b handler returned", "h:a1", "h:b1"]
    )
    assert seen.index("h:a0") < seen.index("h:a1")
    assert seen.index("h:b0") < seen.index("h:b1")


async def test_an_event_that_could_not_be_stored_is_stored_later_although_nothing_newer_comes() -> None:
    seen: list[str] = []
    durable = Handler("store", seen)
    durable.fails.add("a0")
    publisher = publisher_with((durable, True))
    clock = ManualClock()
    publisher.queue("a", event("a", 0))
    with pytest.raises(OSError):
        await publisher.flush("a")
    retrying = asyncio.create_task(publisher.retry_failed(clock, first_delay=1.0, max_delay=4.0))
    try:
        await settle()
        clock.advance(1.0)
        await settle()
        assert seen == ["store:a0", "store:a0"]  # still failing: the next round waits twice as long
        clock.advance(1.0)
        await settle()
        assert len(seen) == 2
        durable.fails.clear()
        clock.advance(1.0)
        await settle()
        assert seen == ["store:a0", "store:a0", "store:a0"]
        clock.advance(10.0)
        await settle()
        assert len(seen) == 3  # stored: given once, never again
    finally:
        retrying.cancel()
