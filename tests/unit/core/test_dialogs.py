"""Dialogs: two calls bridged, established when the child answers, ended with either side."""

import asyncio

import pytest

from support.control_rig import BUSINESS, Rig
from support.fakes import settle
from switchboard.core.errors import ChannelError, InvalidCallState, PstnForbidden
from switchboard.core.events import (
    CallEstablished,
    CallEvent,
    CallFailed,
    CallFinished,
    CallStarted,
    DialogCreated,
    DialogEstablished,
    DialogFailed,
    DialogFinished,
    DialogUnbridged,
)
from switchboard.core.models import CallState, DialogState, Endpoint, EndpointType, ErrorCode
from switchboard.core.outbound import CallRequest


async def connected_to_new_child(rig: Rig, parent: str) -> tuple[str, str]:
    dialog = await rig.control.connect(parent, rig.request(connect_timeout_s=30))
    return dialog.id, dialog.child_call_id


def bridged(rig: Rig, a: str, b: str) -> bool:
    return frozenset({a, b}) in rig.engine.bridged


async def test_a_new_child_that_answers_answers_the_parent_and_bridges_them(rig: Rig) -> None:
    parent = await rig.inbound()
    dialog_id, child = await connected_to_new_child(rig, parent)

    created = await rig.events.wait_for(DialogCreated, parent)
    assert created.dialog.child_call_id == child
    assert (await rig.control.get_call(child)).dialog_id == dialog_id
    assert (await rig.control.get_call(parent)).dialog_id == dialog_id
    assert await rig.state(parent) is CallState.CALLING
    assert rig.channel.ops_of(child) == ["dial"]

    await rig.control.remote_answered(await rig.peer_of(child), "v=0\r\n")

    established = await rig.events.wait_for(DialogEstablished, parent)
    assert established.dialog.state is DialogState.ESTABLISHED
    assert established.call.id == parent, "dialog events travel on the parent call"
    assert await rig.state(parent) is CallState.ESTABLISHED
    assert rig.channel.ops_of(parent) == ["pre_answer", "answer"]
    assert bridged(rig, parent, child)
    stored = await rig.control.get_dialog(dialog_id)
    assert stored.state is DialogState.ESTABLISHED
    assert stored.establish_time == rig.clock.now()
    assert rig.events.names(parent) == [
        "CallReceived",
        "DialogCreated",
        "CallEstablished",
        "DialogEstablished",
    ]


async def test_two_answered_calls_are_bridged_at_once(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    dialog = await rig.control.connect(parent, child)
    assert dialog.child_call_id == child
    await rig.events.wait_for(DialogEstablished, parent)
    assert bridged(rig, parent, child)
    assert (await rig.control.get_dialog(dialog.id)).state is DialogState.ESTABLISHED


async def test_an_existing_child_that_answers_later_establishes_the_dialog(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.inbound(caller="447700900999")
    await rig.control.connect(parent, child)
    await settle()
    assert rig.events.find(DialogEstablished, parent) == []
    await rig.control.answer(child)
    await rig.events.wait_for(DialogEstablished, parent)
    assert bridged(rig, parent, child)


@pytest.mark.parametrize("ending", ["child", "parent"])
async def test_when_one_side_ends_the_other_is_hung_up_and_the_dialog_finishes(rig: Rig, ending: str) -> None:
    parent = await rig.established_inbound()
    dialog_id, child = await connected_to_new_child(rig, parent)
    await rig.control.remote_answered(await rig.peer_of(child), "v=0\r\n")
    await rig.events.wait_for(DialogEstablished, parent)
    rig.clock.advance(42)

    first, other = (child, parent) if ending == "child" else (parent, child)
    await rig.control.remote_hangup(await rig.peer_of(first), description="bye")

    finished = await rig.events.wait_for(DialogFinished, parent)
    assert finished.dialog.state is DialogState.FINISHED
    assert finished.dialog.duration == 42
    assert finished.dialog.error is not None and finished.dialog.error.description == "bye"
    for call_id in (first, other):
        await rig.events.wait_for(CallFinished, call_id)
    assert rig.channel.ops_of(other)[-1] == "hangup"
    assert rig.channel.ops_of(first)[-1] != "hangup"
    assert (await rig.control.get_dialog(dialog_id)).state is DialogState.FINISHED
    assert rig.events.names(parent)[-2:] == ["CallFinished", "DialogFinished"]


async def test_a_child_that_does_not_answer_fails_the_dialog_and_ends_the_parent(rig: Rig) -> None:
    parent = await rig.inbound()
    _, child = await connected_to_new_child(rig, parent)
    rig.clock.advance(30)

    failed = await rig.events.wait_for(DialogFailed, parent)

    assert failed.dialog.state is DialogState.FAILED
    assert failed.dialog.error is not None and failed.dialog.error.code is ErrorCode.NO_ANSWER
    assert (await rig.events.wait_for(CallFailed, child)).call.state is CallState.NO_ANSWER
    assert (await rig.events.wait_for(CallFailed, parent)).call.state is CallState.CANCELLED
    assert rig.channel.ops_of(parent) == ["reject"]


async def test_unbridge_separates_the_calls_and_leaves_both_up(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    dialog = await rig.control.connect(parent, child)
    await rig.events.wait_for(DialogEstablished, parent)

    unbridged = await rig.control.unbridge(dialog.id)

    assert unbridged.state is DialogState.FINISHED
    await rig.events.wait_for(DialogUnbridged, parent)
    assert not bridged(rig, parent, child)
    for call_id in (parent, child):
        call = await rig.control.get_call(call_id)
        assert call.state is CallState.ESTABLISHED
        assert call.dialog_id is None
    with pytest.raises(InvalidCallState, match="unbridge the dialog"):
        await rig.control.unbridge(dialog.id)

    await rig.control.hangup(child)
    await settle()
    assert await rig.state(parent) is CallState.ESTABLISHED
    assert rig.events.find(DialogFinished, parent) == []
    await rig.control.connect(parent, await rig.answered_outbound(to="447700900777"))


async def test_a_second_dialog_on_either_call_is_refused(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    third = await rig.answered_outbound(to="447700900777")
    await rig.control.connect(parent, child)
    with pytest.raises(InvalidCallState, match="start a second dialog"):
        await rig.control.connect(parent, third)
    with pytest.raises(InvalidCallState, match="start a second dialog"):
        await rig.control.connect(third, child)
    with pytest.raises(InvalidCallState, match="start a second dialog"):
        await rig.control.connect(child, rig.request(to="447700900888"))
    assert len(rig.channel.ops_of(third)) == 1


async def test_a_call_cannot_be_bridged_to_itself(rig: Rig) -> None:
    parent = await rig.established_inbound()
    with pytest.raises(InvalidCallState, match="bridge a call to itself"):
        await rig.control.connect(parent, parent)


async def test_a_whatsapp_call_is_never_bridged_to_the_pstn(rig: Rig) -> None:
    parent = await rig.established_inbound()
    request = CallRequest(Endpoint(EndpointType.PHONE, phone_number="+441632960000"), from_=BUSINESS)
    with pytest.raises(PstnForbidden):
        await rig.control.connect(parent, request)
    assert [op for op, _ in rig.channel.ops] == ["pre_answer", "answer"]


async def test_hanging_up_a_dialog_ends_both_calls(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    dialog = await rig.control.connect(parent, child)
    await rig.events.wait_for(DialogEstablished, parent)
    ended = await rig.control.hangup_dialog(dialog.id)
    assert ended.state is DialogState.FINISHED
    assert await rig.state(parent) is CallState.FINISHED
    assert await rig.state(child) is CallState.FINISHED


async def test_the_other_side_is_hung_up_even_when_a_durable_handler_fails(rig: Rig) -> None:
    async def failing_store(event: CallEvent) -> None:
        if isinstance(event, CallFinished):
            raise OSError("disk full")

    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    await rig.control.connect(parent, child)
    await rig.events.wait_for(DialogEstablished, parent)
    rig.bus.subscribe(failing_store, durable=True)

    with pytest.raises(OSError, match="disk full"):
        await rig.control.hangup(child)

    await rig.events.wait_for(CallFinished, parent)
    assert not rig.control.is_live(parent)


async def test_a_dialog_is_established_even_when_a_durable_handler_fails_on_the_answer(rig: Rig) -> None:
    failures = [OSError("disk full")]

    async def failing_store(event: CallEvent) -> None:
        if isinstance(event, CallEstablished) and failures:
            raise failures.pop()

    parent = await rig.inbound()
    _, child = await connected_to_new_child(rig, parent)
    rig.bus.subscribe(failing_store, durable=True)

    with pytest.raises(OSError, match="disk full"):
        await rig.control.remote_answered(await rig.peer_of(child), "v=0\r\n")

    await rig.events.wait_for(DialogEstablished, parent)
    assert bridged(rig, parent, child)


async def test_a_parent_that_hangs_up_while_the_child_is_dialled_fails_the_dialog_and_ends_the_child(
    rig: Rig,
) -> None:
    parent = await rig.inbound()
    graph_api = rig.channel.block("dial")
    connecting = asyncio.create_task(rig.control.connect(parent, rig.request()))
    await rig.events.wait_for(CallStarted)
    await rig.control.remote_hangup(await rig.peer_of(parent), description="the caller gave up")
    await rig.events.wait_for(CallFailed, parent)
    graph_api.set()

    dialog = await connecting

    assert dialog.state is DialogState.FAILED
    failed = await rig.events.wait_for(DialogFailed, parent)
    assert failed.dialog.error is not None and failed.dialog.error.description == "the caller gave up"
    child = dialog.child_call_id
    assert not rig.control.is_live(child)
    assert (await rig.events.wait_for(CallFailed, child)).call.state is CallState.CANCELLED
    assert rig.channel.ops_of(child) == ["dial", "hangup"]


async def test_two_placed_calls_are_bridged_once_both_have_answered(rig: Rig) -> None:
    parent = await rig.outbound(to="447700900001")
    child = await rig.outbound(to="447700900002")
    await rig.control.connect(parent, child)

    await rig.control.remote_answered(await rig.peer_of(child), "v=0\r\n")
    await settle()
    assert rig.events.find(DialogEstablished, parent) == []
    assert await rig.state(parent) is CallState.CALLING

    await rig.control.remote_answered(await rig.peer_of(parent), "v=0\r\n")

    await rig.events.wait_for(DialogEstablished, parent)
    assert bridged(rig, parent, child)


async def test_a_child_answering_while_its_parent_fails_to_be_answered_ends_quietly(rig: Rig) -> None:
    parent = await rig.inbound()
    _, child = await connected_to_new_child(rig, parent)
    graph_api = rig.channel.block("answer", parent)
    rig.channel.fail("answer", "Graph API: 500")
    answering = asyncio.create_task(rig.control.answer(parent))
    await settle()

    answered = asyncio.create_task(rig.control.remote_answered(await rig.peer_of(child), "v=0\r\n"))
    await settle()
    graph_api.set()

    with pytest.raises(ChannelError):
        await answering
    await answered
    await rig.events.wait_for(DialogFailed, parent)
    assert not rig.control.is_live(child)
    assert not bridged(rig, parent, child)
