from datetime import UTC, datetime

import pytest

from switchboard.core.bus import DurableDeliveryFailed, InProcessEventBus
from switchboard.core.events import CallEvent, CallReceived
from switchboard.core.models import Call, Direction, Endpoint, EndpointType


def event() -> CallReceived:
    call = Call(
        id="c",
        endpoint=Endpoint(EndpointType.WHATSAPP, phone_number="1"),
        direction=Direction.INBOUND,
        from_="1",
        to="2",
    )
    return CallReceived(call=call, timestamp=datetime.now(UTC))


async def test_a_failing_durable_handler_fails_the_publisher_after_all_handlers_ran() -> None:
    bus = InProcessEventBus()
    seen: list[str] = []

    async def durable(e: CallEvent) -> None:
        raise OSError("disk full")

    async def other(e: CallEvent) -> None:
        seen.append(e.call_id)

    bus.subscribe(durable, durable=True)
    bus.subscribe(other)
    with pytest.raises(DurableDeliveryFailed, match="disk full") as failed:
        await bus.publish(event())
    assert seen == ["c"]
    assert isinstance(failed.value.error, OSError) and failed.value.handlers == (durable,)


async def test_a_failing_plain_handler_is_logged_not_raised() -> None:
    bus = InProcessEventBus()

    async def broken(e: CallEvent) -> None:
        raise RuntimeError("bug")

    bus.subscribe(broken)
    await bus.publish(event())
