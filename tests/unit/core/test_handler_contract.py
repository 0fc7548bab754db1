"""The handler contract of `core.events`: handlers act on the call whose event they handle, events keep
their order, and a durable handler's failure fails the action that caused the event."""

import asyncio

import pytest

from support.control_rig import CONFIG, IVR, Rig
from support.fakes import settle
from switchboard.core.control import CallControl
from switchboard.core.events import (
    CallEstablished,
    CallEvent,
    CallFinished,
    CallReceived,
    DtmfCaptured,
    DtmfReceived,
    SayFinished,
    TransferFinished,
    TransferRequested,
)
from switchboard.core.models import CallState


class Application:
    """An in-process application that drives a call entirely from its event handler."""

    def __init__(self, control: CallControl) -> None:
        self.control = control
        self.errors: list[BaseException] = []
        self.returned: list[str] = []

    async def __call__(self, event: CallEvent) -> None:
        try:
            await self.act(event)
        except Exception as exc:  # a plain handler's error would only be logged; the test must see it
            self.errors.append(exc)

    async def act(self, event: CallEvent) -> None:
        control, call_id = self.control, event.call_id
        match event:
            case CallReceived():
                await control.answer(call_id)
                self.returned.append("answer")
            case CallEstablished():
                await control.say(call_id, "Press 1 for sales")
                self.returned.append("say")
            case SayFinished():
                await control.capture_dtmf(call_id, max_length=4, timeout_ms=10_000, terminator="#")
                self.returned.append("capture")
            case DtmfCaptured(dtmf=dtmf):
                await control.transfer(call_id, IVR, custom_data={"choice": dtmf})
                self.returned.append("transfer")
            case TransferRequested(transfer_id=transfer_id):
                await control.accept_transfer(call_id, transfer_id)
                self.returned.append("accept")
            case TransferFinished():
                await control.hangup(call_id)
                self.returned.append("hangup")


async def test_a_handler_drives_a_call_through_its_whole_life_from_its_events(rig: Rig) -> None:
    app = Application(rig.control)
    rig.bus.subscribe(app)

    call_id = await rig.inbound()
    await rig.events.wait_for(CallEstablished, call_id)
    assert rig.speech.said == ["Press 1 for sales"]

    rig.leg(call_id).finish_playback()
    await rig.events.wait_for(SayFinished, call_id)
    await settle()
    rig.leg(call_id).press("12#")

    finished = await rig.events.wait_for(CallFinished, call_id)

    assert app.errors == []
    assert app.returned == ["answer", "say", "capture", "transfer", "accept", "hangup"]
    assert rig.events.names(call_id) == [
        "CallReceived",
        "CallEstablished",
        "SayFinished",
        "DtmfReceived",
        "DtmfReceived",
        "DtmfReceived",
        "DtmfCaptured",
        "TransferRequested",
        "TransferFinished",
        "CallFinished",
    ]
    assert rig.events.find(DtmfCaptured, call_id)[0].dtmf == "12"
    assert finished.call.targets == [CONFIG, IVR]
    assert finished.call.custom_data == {"choice": "12"}
    assert finished.call.state is CallState.FINISHED


async def test_every_handler_sees_an_event_before_any_sees_the_events_its_handling_caused(rig: Rig) -> None:
    seen: list[str] = []

    async def acting(event: CallEvent) -> None:
        seen.append(f"acting:{type(event).__name__}")
        if isinstance(event, CallReceived):
            await rig.control.answer(event.call_id)
            seen.append("answer returned")

    async def watching(event: CallEvent) -> None:
        seen.append(f"watching:{type(event).__name__}")

    rig.bus.subscribe(acting)
    rig.bus.subscribe(watching)
    await rig.inbound()

    assert seen == [
        "acting:CallReceived",
        "answer returned",
        "watching:CallReceived",
        "acting:CallEstablished",
        "watching:CallEstablished",
    ]


async def test_an_action_returns_once_its_events_have_been_handled(rig: Rig) -> None:
    stored: list[str] = []

    async def outbox(event: CallEvent) -> None:
        stored.append(type(event).__name__)

    rig.bus.subscribe(outbox, durable=True)
    call_id = await rig.inbound()
    assert stored == ["CallReceived"]
    await rig.control.answer(call_id)
    assert stored == ["CallReceived", "CallEstablished"]
    await rig.control.hangup(call_id)
    assert stored[-1] == "CallFinished"


async def test_a_durable_handler_failure_fails_the_action_and_the_event_is_stored_later(rig: Rig) -> None:
    stored: list[str] = []
    failures = [OSError("the outbox is full")]

    async def outbox(event: CallEvent) -> None:
        if isinstance(event, CallEstablished) and failures:
            raise failures.pop()
        stored.append(type(event).__name__)

    rig.bus.subscribe(outbox, durable=True)
    call_id = await rig.inbound()

    with pytest.raises(OSError, match="the outbox is full"):
        await rig.control.answer(call_id)

    assert await rig.state(call_id) is CallState.ESTABLISHED
    assert rig.events.names(call_id) == ["CallReceived", "CallEstablished"], "the others still got it"
    assert stored == ["CallReceived"]
    await rig.control.hangup(call_id)
    assert stored == ["CallReceived", "CallEstablished", "CallFinished"], "stored again, in order"


async def test_an_event_the_store_refused_blocks_newer_ones_until_it_is_stored(rig: Rig) -> None:
    stored: list[str] = []
    failures = [OSError("down"), OSError("still down")]

    async def outbox(event: CallEvent) -> None:
        if isinstance(event, CallEstablished) and failures:
            raise failures.pop()
        stored.append(type(event).__name__)

    rig.bus.subscribe(outbox, durable=True)
    call_id = await rig.inbound()
    with pytest.raises(OSError, match="still down"):
        await rig.control.answer(call_id)
    with pytest.raises(OSError, match="down"):
        await rig.control.hangup(call_id)
    assert stored == ["CallReceived"], "nothing newer overtakes the event that was not stored"
    await rig.control.publish_pending(call_id)
    assert stored == ["CallReceived", "CallEstablished", "CallFinished"]


async def test_a_plain_handler_failure_does_not_fail_the_action(rig: Rig) -> None:
    async def broken(event: CallEvent) -> None:
        raise RuntimeError("bug in an application")

    rig.bus.subscribe(broken)
    call_id = await rig.inbound()
    call = await rig.control.answer(call_id)
    assert call.state is CallState.ESTABLISHED
    assert rig.events.names(call_id) == ["CallReceived", "CallEstablished"]


async def test_handlers_of_two_calls_that_act_on_each_other_at_once_do_not_wait_for_each_other(
    rig: Rig,
) -> None:
    first = await rig.established_inbound(caller="447700900001")
    second = await rig.established_inbound(caller="447700900002")
    other = {first: second, second: first}
    both_in = asyncio.Barrier(2)
    returned: list[str] = []

    async def hang_up_the_other_leg(event: CallEvent) -> None:
        if isinstance(event, DtmfReceived):
            await both_in.wait()  # both calls' executors are publishing now
            await rig.control.hangup(other[event.call_id])
            returned.append(event.call_id)

    rig.bus.subscribe(hang_up_the_other_leg)
    rig.leg(first).press("1")
    rig.leg(second).press("1")

    await rig.events.wait_for(CallFinished, first)
    await rig.events.wait_for(CallFinished, second)
    await settle()
    assert sorted(returned) == sorted([first, second])
