"""An inbound call's life through `CallControl`: arriving, ringing, pre-answering, answering, refusal."""

import pytest

from support.control_rig import CALLER, CONFIG, IVR, Rig
from support.fakes import FakeChannel, RingingFakeChannel, settle
from switchboard.core.errors import ChannelError, InvalidCallState
from switchboard.core.events import (
    CallEstablished,
    CallFailed,
    CallPreEstablished,
    CallReceived,
    CallRinging,
)
from switchboard.core.models import (
    CallState,
    Direction,
    EndpointType,
    ErrorCode,
    HangupSource,
    InboundAction,
    InboundTarget,
)
from switchboard.core.registry import EARLY_SIGNAL_KEEP_S


async def test_an_inbound_call_is_received_handed_to_its_target_and_saved(rig: Rig) -> None:
    call_id = await rig.inbound()
    event = await rig.events.wait_for(CallReceived, call_id)
    call = await rig.control.get_call(call_id)
    assert call.state is CallState.CALLING
    assert call.direction is Direction.INBOUND
    assert call.from_ == CALLER
    assert call.targets == [CONFIG]
    assert call.calls_configuration_id == CONFIG.id
    assert call.application_id == CONFIG.action.value
    assert event.call.state is CallState.CALLING
    assert (await rig.stored(call_id)).state is CallState.CALLING
    assert rig.control.is_live(call_id)
    assert rig.leg(call_id).sending is False, "no early media toward a WhatsApp caller"
    assert rig.channel.ops_of(call_id) == []


async def test_a_call_handed_to_another_application_has_no_calls_configuration(rig: Rig) -> None:
    call_id = await rig.inbound(target=IVR)
    call = await rig.control.get_call(call_id)
    assert call.targets == [IVR]
    assert call.calls_configuration_id is None
    assert call.application_id == IVR.action.value


async def test_send_ringing_moves_calling_to_ringing_once(rig: Rig) -> None:
    call_id = await rig.inbound()
    call = await rig.control.send_ringing(call_id)
    assert call.state is CallState.RINGING
    assert call.ringing_time == rig.clock.now()
    await rig.events.wait_for(CallRinging, call_id)
    await rig.control.send_ringing(call_id)
    await settle()
    assert len(rig.events.find(CallRinging, call_id)) == 1


async def test_send_ringing_asks_a_channel_that_rings_back_to_ring(rig: Rig) -> None:
    channel = RingingFakeChannel()
    rig.control.register_channel(channel)
    call_id = await rig.inbound()
    await rig.control.send_ringing(call_id)
    assert channel.ops_of(call_id) == ["ring"]
    assert rig.channel.ops_of(call_id) == []


@pytest.mark.parametrize("ring_first", [False, True])
async def test_pre_answer_moves_to_pre_established(rig: Rig, ring_first: bool) -> None:
    call_id = await rig.inbound()
    if ring_first:
        await rig.control.send_ringing(call_id)
    call = await rig.control.pre_answer(call_id)
    assert call.state is CallState.PRE_ESTABLISHED
    await rig.events.wait_for(CallPreEstablished, call_id)
    assert rig.channel.ops_of(call_id) == ["pre_answer"]


@pytest.mark.parametrize("start", [CallState.CALLING, CallState.RINGING, CallState.PRE_ESTABLISHED])
async def test_answer_moves_to_established_from_every_answerable_state(rig: Rig, start: CallState) -> None:
    call_id = await rig.inbound()
    if start is CallState.RINGING:
        await rig.control.send_ringing(call_id)
    if start is CallState.PRE_ESTABLISHED:
        await rig.control.pre_answer(call_id)
    rig.clock.advance(2)

    call = await rig.control.answer(call_id)

    assert call.state is CallState.ESTABLISHED
    assert call.answer_time == rig.clock.now()
    await rig.events.wait_for(CallEstablished, call_id)
    assert rig.channel.ops_of(call_id) == ["pre_answer", "answer"], "pre-accepted once, then accepted"
    assert rig.leg(call_id).sending is True
    assert (await rig.stored(call_id)).state is CallState.ESTABLISHED


async def test_a_channel_that_fails_the_answer_fails_the_call_and_the_action(rig: Rig) -> None:
    call_id = await rig.inbound()
    rig.channel.fail("answer", "Graph API: 500")
    with pytest.raises(ChannelError, match="Graph API: 500"):
        await rig.control.answer(call_id)
    failed = await rig.events.wait_for(CallFailed, call_id)
    assert failed.call.state is CallState.FAILED
    assert failed.call.error is not None
    assert failed.call.error.code is ErrorCode.SERVICE_UNAVAILABLE
    assert not rig.control.is_live(call_id)
    assert rig.leg(call_id).closed


@pytest.mark.parametrize(
    ("action", "state", "error"),
    [
        ("answer", CallState.ESTABLISHED, "cannot answer call 'id-1' in state ESTABLISHED"),
        ("pre_answer", CallState.ESTABLISHED, "cannot pre-answer call 'id-1' in state ESTABLISHED"),
        ("pre_answer", CallState.PRE_ESTABLISHED, "cannot pre-answer call 'id-1' in state PRE_ESTABLISHED"),
        ("send_ringing", CallState.PRE_ESTABLISHED, "cannot ring call 'id-1' in state PRE_ESTABLISHED"),
        ("send_ringing", CallState.ESTABLISHED, "cannot ring call 'id-1' in state ESTABLISHED"),
    ],
)
async def test_an_action_the_state_does_not_allow_raises_naming_the_state(
    rig: Rig, action: str, state: CallState, error: str
) -> None:
    call_id = await rig.inbound()
    if state is CallState.PRE_ESTABLISHED:
        await rig.control.pre_answer(call_id)
    else:
        await rig.control.answer(call_id)
    ops = list(rig.channel.ops)
    with pytest.raises(InvalidCallState, match=error) as raised:
        await getattr(rig.control, action)(call_id)
    assert raised.value.state == state.value
    assert await rig.state(call_id) is state
    assert rig.channel.ops == ops, "nothing reached the peer"


async def test_a_repeated_inbound_call_is_ignored_while_live_and_after_it_ended(rig: Rig) -> None:
    inbound = rig.inbound_call(peer_call_id="wacid.same")
    first = await rig.control.receive_inbound(inbound)
    assert first is not None
    assert await rig.control.receive_inbound(inbound) is None
    await rig.control.hangup(first.id)
    assert await rig.control.receive_inbound(inbound) is None
    assert list(rig.calls.calls) == [first.id]
    assert len(rig.events.find(CallReceived)) == 1


async def test_a_call_for_an_application_that_is_not_there_is_refused_and_saved_as_failed(rig: Rig) -> None:
    rig.calls_api.refusals[CONFIG.id] = "calls configuration 'my-app' does not exist"
    call = await rig.control.receive_inbound(rig.inbound_call(peer_call_id="wacid.refused"))
    assert call is None
    [stored] = rig.calls.calls.values()
    assert stored.state is CallState.FAILED
    assert stored.hangup_source is HangupSource.PLATFORM
    assert stored.error is not None
    assert stored.error.code is ErrorCode.SERVICE_UNAVAILABLE
    assert stored.error.description == "calls configuration 'my-app' does not exist"
    assert rig.channel.ops == [("reject", stored.id)]
    assert rig.events.events == []
    assert rig.engine.legs == {}, "no media for a refused call"


async def test_a_call_with_no_inbound_target_is_refused(rig: Rig) -> None:
    assert await rig.control.receive_inbound(rig.inbound_call(target=None)) is None
    [stored] = rig.calls.calls.values()
    assert stored.state is CallState.FAILED
    assert stored.error is not None
    assert "no inbound configuration" in stored.error.description
    assert rig.channel.ops == [("reject", stored.id)]


async def test_a_call_for_an_action_no_application_takes_is_refused(rig: Rig) -> None:
    target = InboundTarget(InboundAction.CONTACT_CENTER, "queue-1")
    assert await rig.control.receive_inbound(rig.inbound_call(target=target)) is None
    [stored] = rig.calls.calls.values()
    assert stored.error is not None
    assert "CONTACT_CENTER is not available" in stored.error.description


async def test_a_call_from_an_endpoint_without_a_channel_is_refused(rig: Rig) -> None:
    inbound = rig.inbound_call(endpoint_type=EndpointType.SIP)
    assert await rig.control.receive_inbound(inbound) is None
    [stored] = rig.calls.calls.values()
    assert stored.state is CallState.FAILED
    assert rig.channel.ops == []


async def test_a_channel_with_early_media_sends_to_the_caller_before_the_answer(rig: Rig) -> None:
    rig.control.register_channel(FakeChannel(EndpointType.WEBRTC, early_media=True))
    call = await rig.control.receive_inbound(rig.inbound_call(endpoint_type=EndpointType.WEBRTC))
    assert call is not None
    assert rig.leg(call.id).sending is True


async def test_a_hangup_that_arrives_before_its_call_ends_the_call_when_it_comes(rig: Rig) -> None:
    await rig.control.remote_hangup("wacid.early", description="the user hung up")
    assert rig.control.was_ended_early("wacid.early")
    assert not rig.control.was_ended_early("wacid.other")

    call = await rig.control.receive_inbound(rig.inbound_call(peer_call_id="wacid.early"))

    assert call is not None
    failed = await rig.events.wait_for(CallFailed, call.id)
    assert failed.call.state is CallState.CANCELLED
    assert failed.call.hangup_source is HangupSource.ENDPOINT
    assert rig.events.names(call.id) == ["CallReceived", "CallFailed"]
    assert rig.channel.ops == [], "the peer already hung up"
    assert not rig.control.was_ended_early("wacid.early")


async def test_a_hangup_for_a_call_that_never_comes_is_forgotten_after_a_while(rig: Rig) -> None:
    await rig.control.remote_hangup("wacid.never")
    rig.clock.advance(EARLY_SIGNAL_KEEP_S + 1)
    await rig.control.remote_hangup("wacid.another")
    assert not rig.control.was_ended_early("wacid.never")
    assert rig.control.was_ended_early("wacid.another")
