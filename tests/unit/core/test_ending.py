"""How calls end: hang-ups in every state, by either side, media failures, and the final record."""

import pytest

from support.control_rig import Rig
from support.fakes import settle
from switchboard.core import state as st
from switchboard.core.errors import CallNotFound, InvalidCallState
from switchboard.core.events import CallEvent, CallFailed, CallFinished
from switchboard.core.lifecycle import MEDIA_CLOSED_GRACE_S, STORE_END_RETRY_S
from switchboard.core.models import Call, CallError, CallState, ErrorCode, HangupSource

INBOUND_STATES = [CallState.CALLING, CallState.RINGING, CallState.PRE_ESTABLISHED, CallState.ESTABLISHED]


async def inbound_in(rig: Rig, state: CallState) -> str:
    call_id = await rig.inbound()
    if state is CallState.RINGING:
        await rig.control.send_ringing(call_id)
    elif state is CallState.PRE_ESTABLISHED:
        await rig.control.pre_answer(call_id)
    elif state is CallState.ESTABLISHED:
        await rig.control.answer(call_id)
    assert await rig.state(call_id) is state
    return call_id


async def final_event(rig: Rig, call_id: str) -> CallEvent:
    await settle()
    [event] = [e for e in rig.events.of(call_id) if isinstance(e, CallFinished | CallFailed)]
    return event


@pytest.mark.parametrize(
    ("state", "final", "told"),
    [
        (CallState.CALLING, CallState.CANCELLED, "reject"),
        (CallState.RINGING, CallState.CANCELLED, "reject"),
        (CallState.PRE_ESTABLISHED, CallState.FINISHED, "hangup"),
        (CallState.ESTABLISHED, CallState.FINISHED, "hangup"),
    ],
)
async def test_an_api_hangup_ends_the_call_and_tells_the_peer(
    rig: Rig, state: CallState, final: CallState, told: str
) -> None:
    call_id = await inbound_in(rig, state)
    rig.clock.advance(3)

    call = await rig.control.hangup(call_id)

    assert call.state is final
    assert call.end_time == rig.clock.now()
    assert call.hangup_source is HangupSource.API
    assert call.error is not None and call.error.code is ErrorCode.NORMAL_HANGUP
    assert rig.channel.ops_of(call_id)[-1] == told
    event = await final_event(rig, call_id)
    assert type(event) is (CallFinished if final is CallState.FINISHED else CallFailed)
    assert not rig.control.is_live(call_id)
    assert rig.leg(call_id).closed
    assert (await rig.stored(call_id)).state is final


async def test_a_refused_inbound_call_is_rejected_knowing_why(rig: Rig) -> None:
    """The channel picks its refusal (e.g. a SIP final response) from the call's error."""
    call_id = await inbound_in(rig, CallState.RINGING)
    told: list[CallError | None] = []
    reject = rig.channel.reject

    async def remember(call: Call) -> None:
        told.append(call.error)
        await reject(call)

    rig.channel.reject = remember  # type: ignore[method-assign]
    await rig.control.hangup(call_id, source=HangupSource.PLATFORM, code=ErrorCode.BUSY, description="486")

    assert told == [CallError(ErrorCode.BUSY, "486")]


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("state", INBOUND_STATES)
async def test_every_code_in_every_state_ends_in_a_legal_final_state(
    rig: Rig, state: CallState, code: ErrorCode
) -> None:
    call_id = await inbound_in(rig, state)
    before = await rig.control.get_call(call_id)

    call = await rig.control.hangup(call_id, code=code)

    assert call.state is st.final_state_for(before, code)
    assert call.state in st.TRANSITIONS[state]
    assert call.state.is_final
    assert call.error is not None and call.error.code is code
    event = await final_event(rig, call_id)
    assert type(event) is (CallFinished if call.state is CallState.FINISHED else CallFailed)
    assert (await rig.stored(call_id)).state is call.state


@pytest.mark.parametrize(
    ("state", "code", "final"),
    [
        (CallState.CALLING, ErrorCode.NORMAL_HANGUP, CallState.CANCELLED),
        (CallState.RINGING, ErrorCode.NORMAL_HANGUP, CallState.CANCELLED),
        (CallState.PRE_ESTABLISHED, ErrorCode.NORMAL_HANGUP, CallState.FINISHED),
        (CallState.ESTABLISHED, ErrorCode.NORMAL_HANGUP, CallState.FINISHED),
        (CallState.ESTABLISHED, ErrorCode.MEDIA_FAILURE, CallState.FAILED),
        (CallState.RINGING, ErrorCode.DESTINATION_UNAVAILABLE, CallState.FAILED),
    ],
)
async def test_a_remote_hangup_ends_the_call_without_telling_the_peer(
    rig: Rig, state: CallState, code: ErrorCode, final: CallState
) -> None:
    call_id = await inbound_in(rig, state)
    ops = rig.channel.ops_of(call_id)
    peer = await rig.peer_of(call_id)

    await rig.control.remote_hangup(peer, code=code, description="Meta ended the call")

    call = await rig.control.get_call(call_id)
    assert call.state is final
    assert call.hangup_source is HangupSource.ENDPOINT
    assert call.error is not None and call.error.description == "Meta ended the call"
    assert rig.channel.ops_of(call_id) == ops
    await final_event(rig, call_id)


async def test_a_remote_hangup_after_the_end_changes_nothing(rig: Rig) -> None:
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    peer = await rig.peer_of(call_id)
    await rig.control.hangup(call_id)
    await rig.control.remote_hangup(peer, code=ErrorCode.MEDIA_FAILURE)
    call = await rig.control.get_call(call_id)
    assert call.state is CallState.FINISHED
    assert call.hangup_source is HangupSource.API
    await final_event(rig, call_id)


@pytest.mark.parametrize("action", ["answer", "pre_answer", "send_ringing", "hangup"])
async def test_acting_on_an_ended_call_raises_naming_its_final_state(rig: Rig, action: str) -> None:
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    await rig.control.hangup(call_id)
    with pytest.raises(InvalidCallState, match=f"call '{call_id}' in state FINISHED"):
        await getattr(rig.control, action)(call_id)


async def test_acting_on_an_unknown_call_raises_not_found(rig: Rig) -> None:
    with pytest.raises(CallNotFound):
        await rig.control.hangup("nope")
    with pytest.raises(CallNotFound):
        await rig.control.get_call("nope")


async def test_the_final_state_and_record_are_saved_before_the_final_event_is_published(rig: Rig) -> None:
    seen_in_store: list[tuple[CallState, bool]] = []

    async def store_check(event: CallEvent) -> None:
        if isinstance(event, CallFinished):
            stored = await rig.stored(event.call_id)
            seen_in_store.append((stored.state, stored.end_time is not None and stored.error is not None))

    rig.bus.subscribe(store_check, durable=True)
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    await rig.control.hangup(call_id)
    assert seen_in_store == [(CallState.FINISHED, True)], "stored before the action returned"


async def test_a_media_failure_fails_an_answered_call_and_hangs_up_the_peer(rig: Rig) -> None:
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    rig.leg(call_id).fail("ICE failed")
    failed = await rig.events.wait_for(CallFailed, call_id)
    assert failed.call.state is CallState.FAILED
    assert failed.call.error is not None
    assert failed.call.error.code is ErrorCode.MEDIA_FAILURE
    assert failed.call.error.description == "ICE failed"
    assert failed.call.hangup_source is HangupSource.PLATFORM
    assert rig.channel.ops_of(call_id)[-1] == "hangup"


async def test_media_closed_by_the_peer_ends_the_call_after_the_grace_period(rig: Rig) -> None:
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    rig.leg(call_id).start_media()
    rig.leg(call_id).close_media()
    await settle()
    rig.clock.advance(MEDIA_CLOSED_GRACE_S - 0.1)
    await settle()
    assert await rig.state(call_id) is CallState.ESTABLISHED

    rig.clock.advance(0.1)
    finished = await rig.events.wait_for(CallFinished, call_id)
    assert finished.call.hangup_source is HangupSource.ENDPOINT
    assert finished.call.error is not None
    assert finished.call.error.description == "the peer ended the media session"


async def test_media_closed_then_the_peer_hangs_up_within_the_grace_period(rig: Rig) -> None:
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    rig.leg(call_id).close_media()
    await settle()
    rig.clock.advance(1)
    await rig.control.remote_hangup(await rig.peer_of(call_id), description="the user hung up")
    rig.clock.advance(MEDIA_CLOSED_GRACE_S)
    event = await final_event(rig, call_id)
    assert event.call.error is not None
    assert event.call.error.description == "the user hung up"


async def test_shutdown_ends_every_live_call(rig: Rig) -> None:
    first = await inbound_in(rig, CallState.ESTABLISHED)
    second = await inbound_in(rig, CallState.CALLING)
    await rig.control.shutdown()
    for call_id in (first, second):
        assert not rig.control.is_live(call_id)
        stored = await rig.stored(call_id)
        assert stored.state.is_final
        assert stored.error is not None and stored.error.code is ErrorCode.SERVICE_UNAVAILABLE


async def test_an_end_that_cannot_be_stored_fails_and_is_stored_once_storage_works(rig: Rig) -> None:
    call_id = await inbound_in(rig, CallState.ESTABLISHED)
    rig.calls.failing = OSError("database or disk is full")

    with pytest.raises(OSError):
        await rig.control.hangup(call_id)

    assert rig.channel.ops_of(call_id)[-1] == "hangup"
    assert rig.leg(call_id).closed
    assert (await rig.stored(call_id)).state is CallState.ESTABLISHED
    rig.clock.advance(STORE_END_RETRY_S)
    await settle()
    assert (await rig.stored(call_id)).state is CallState.ESTABLISHED
    assert not [e for e in rig.events.of(call_id) if isinstance(e, CallFinished | CallFailed)]
    assert rig.control.is_live(call_id), "forgotten before its end was stored"

    rig.calls.failing = None
    rig.clock.advance(STORE_END_RETRY_S)
    event = await final_event(rig, call_id)

    assert type(event) is CallFinished
    assert (await rig.stored(call_id)).state is CallState.FINISHED
    assert not rig.control.is_live(call_id)
    assert rig.channel.ops_of(call_id).count("hangup") == 1
