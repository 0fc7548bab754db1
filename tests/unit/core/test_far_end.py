"""The far end always hears that a call ended: a hang-up that cannot be delivered at once is retried
durably, a crash's live calls are ended at the next start, and shutdown ends every call at once."""

from __future__ import annotations

import asyncio

from support.control_rig import Rig
from support.fakes import settle
from switchboard.core.events import CallFailed, CallFinished
from switchboard.core.far_end import HANGUP_KIND
from switchboard.core.models import CallState, Direction, HangupDelivery


async def run_jobs(rig: Rig, seconds: float) -> None:
    rig.clock.advance(seconds)
    await settle()
    await rig.control.jobs.run_due()
    await settle()


async def test_a_hang_up_the_far_end_missed_is_retried_until_it_gets_through(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    rig.channel.fail("hangup", "Graph API terminate failed after 4 attempts", retryable=True)
    await rig.control.hangup(call_id)
    await rig.events.wait_for(CallFinished, call_id)
    stored = await rig.stored(call_id)
    assert stored.state is CallState.FINISHED, "the call ends here at once"
    assert stored.hangup_delivery is HangupDelivery.PENDING
    assert rig.jobs.states() == [(HANGUP_KIND, call_id, "pending")]

    await run_jobs(rig, 1.5)
    assert rig.channel.ops_of(call_id).count("hangup") == 2 and rig.jobs.states()[0][2] == "pending"
    del rig.channel.failures["hangup"]
    await run_jobs(rig, 2.5)
    assert rig.jobs.states()[0][2] == "done"
    assert (await rig.stored(call_id)).hangup_delivery is HangupDelivery.DELIVERED


async def test_a_hang_up_never_delivered_is_said_on_the_record(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    rig.channel.fail("hangup", "Graph API terminate failed", retryable=True)
    await rig.control.hangup(call_id)
    for _ in range(80):
        await run_jobs(rig, 60)
    stored = await rig.stored(call_id)
    assert stored.hangup_delivery is HangupDelivery.FAILED
    assert "never told" in (stored.hangup_delivery_error or "")
    assert rig.jobs.states() == [(HANGUP_KIND, call_id, "failed")]


async def test_a_refused_hang_up_is_not_retried(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    rig.channel.fail("hangup", "call not found", code=100)
    await rig.control.hangup(call_id)
    stored = await rig.stored(call_id)
    assert stored.hangup_delivery is HangupDelivery.FAILED
    assert "refused" in (stored.hangup_delivery_error or "") and rig.jobs.states() == []


async def test_calls_left_live_by_a_crash_are_ended_at_the_next_start(rig: Rig) -> None:
    answered = await rig.established_inbound()
    ringing = await rig.inbound()
    placed = await rig.outbound()
    for call_id in (answered, ringing, placed):
        crashed = await rig.stored(call_id)
        rig.calls.calls[call_id] = crashed  # what the database held when the process died
    await rig.control.recover()
    await rig.events.wait_for(CallFinished, answered)
    await rig.events.wait_for(CallFailed, ringing)
    await rig.events.wait_for(CallFailed, placed)
    for call_id in (answered, ringing, placed):
        stored = await rig.stored(call_id)
        assert stored.state.is_final and "server stopped" in (
            stored.error.description if stored.error else ""
        )
        assert stored.hangup_delivery is HangupDelivery.PENDING
    await run_jobs(rig, 0)
    assert rig.channel.ops_of(ringing)[-1] == "reject", "an unanswered inbound call is rejected"
    assert rig.channel.ops_of(answered)[-1] == "hangup"
    stored_placed = await rig.stored(placed)
    assert stored_placed.direction is Direction.OUTBOUND and rig.channel.ops_of(placed)[-1] == "hangup"
    assert {state for _, _, state in rig.jobs.states()} == {"done"}


async def test_shutdown_ends_every_call_at_once_within_the_grace_time(rig: Rig) -> None:
    calls = [await rig.established_inbound() for _ in range(3)]
    release = rig.channel.block("hangup")
    stopping = asyncio.create_task(rig.control.lifecycle.shutdown(grace_s=0.2))
    await asyncio.wait_for(stopping, 5)
    for call_id in calls:
        assert (await rig.stored(call_id)).state is CallState.FINISHED
    assert {state for _, _, state in rig.jobs.states()} == {"pending"}, "the next start tells the far ends"
    release.set()
