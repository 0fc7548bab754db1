"""Each call has its own executor: a call whose peer (or handler) is slow delays only itself."""

import asyncio

from support.control_rig import Rig
from support.fakes import settle
from switchboard.core.events import (
    CallEvent,
    CallFailed,
    CallFinished,
    DtmfCaptured,
    DtmfReceived,
    PlayFinished,
)
from switchboard.core.models import CallState
from switchboard.media.engine import Tone


async def capture_completes_on_time(rig: Rig, call_id: str) -> None:
    """Keys pressed and a timeout reached on `call_id`, with its result on time."""
    await rig.control.capture_dtmf(call_id, max_length=4, timeout_ms=5_000)
    rig.leg(call_id).press("12")
    await rig.events.wait_for(DtmfReceived, call_id, n=2)
    rig.clock.advance(5)
    captured = await rig.events.wait_for(DtmfCaptured, call_id)
    assert (captured.dtmf, captured.timeout) == ("12", True)
    assert captured.timestamp == rig.clock.now()


async def test_a_call_whose_peer_does_not_answer_a_hangup_does_not_delay_another_call(rig: Rig) -> None:
    slow = await rig.established_inbound(caller="447700900001")
    other = await rig.established_inbound(caller="447700900002")
    # The Graph API for `slow` is retried for as long as the test holds the gate.
    graph_api = rig.channel.block("hangup", slow)
    hanging_up = asyncio.create_task(rig.control.hangup(slow))
    await settle()
    assert rig.channel.ops_of(slow)[-1] == "hangup"

    await capture_completes_on_time(rig, other)
    await rig.control.play(other, Tone(440, 500))
    await rig.control.hangup(other)
    await rig.events.wait_for(CallFinished, other)

    assert not hanging_up.done()
    assert rig.events.find(CallFinished, slow) == []
    graph_api.set()
    call = await hanging_up
    assert call.state is CallState.FINISHED


async def test_a_call_whose_executor_waits_on_its_peer_does_not_delay_another_calls_executor(
    rig: Rig,
) -> None:
    slow = await rig.established_inbound(caller="447700900001")
    other = await rig.established_inbound(caller="447700900002")
    graph_api = rig.channel.block("hangup", slow)
    rig.leg(slow).fail("ICE failed")  # the executor of `slow` ends it and waits on the peer
    await settle()
    rig.leg(slow).press("5")

    await capture_completes_on_time(rig, other)

    await settle()
    assert rig.events.find(CallFailed, slow) == []
    assert rig.events.find(DtmfReceived, slow) == [], "its own later events wait behind it"
    graph_api.set()
    failed = await rig.events.wait_for(CallFailed, slow)
    assert failed.call.state is CallState.FAILED


async def test_a_slow_handler_on_one_call_does_not_delay_another_call(rig: Rig) -> None:
    slow = await rig.established_inbound(caller="447700900001")
    other = await rig.established_inbound(caller="447700900002")
    release = asyncio.Event()
    holding: list[str] = []

    async def slow_handler(event: CallEvent) -> None:
        if isinstance(event, PlayFinished) and event.call_id == slow:
            holding.append(event.operation_id)
            await release.wait()

    rig.bus.subscribe(slow_handler)
    await rig.control.play(slow, Tone(440, 500))
    rig.leg(slow).finish_playback()
    await settle()
    assert holding

    await capture_completes_on_time(rig, other)

    release.set()
    await rig.events.wait_for(PlayFinished, slow)


async def test_a_failure_handling_one_media_event_does_not_stop_the_calls_executor(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    leg = rig.leg(call_id)
    await rig.control.play(call_id, Tone(440, 500), stop_on_terminator="#")

    async def broken_stop_play() -> None:
        raise RuntimeError("engine bug")

    leg.stop_play = broken_stop_play  # type: ignore[method-assign]
    leg.press("#")
    await rig.events.wait_for(DtmfReceived, call_id)
    await settle()

    await capture_completes_on_time(rig, call_id)
