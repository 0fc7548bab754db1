"""Placing calls: dialled, ringing, answered, unanswered, rejected, failed, and signals that overtake
the dial."""

import asyncio

import pytest

from support.control_rig import BUSINESS, CALLEE, CONFIG, IVR, Rig
from support.fakes import settle
from switchboard.core.errors import ChannelError, InvalidCallState, UnsupportedEndpoint
from switchboard.core.events import (
    CallEstablished,
    CallFailed,
    CallFinished,
    CallRinging,
    CallStarted,
)
from switchboard.core.models import (
    Call,
    CallState,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    HangupSource,
)
from switchboard.core.outbound import CallRequest
from switchboard.core.session import RecordingRequest


async def test_a_placed_call_is_dialled_with_an_offer_and_bound_to_the_peer_call(rig: Rig) -> None:
    call_id = await rig.outbound(custom_data={"k": "v"}, external_id="ext-1")
    started = await rig.events.wait_for(CallStarted, call_id)
    call = await rig.control.get_call(call_id)
    assert call.state is CallState.CALLING
    assert call.direction is Direction.OUTBOUND
    assert (call.from_, call.to) == (BUSINESS, CALLEE)
    assert call.sender_id == rig.channel.sender_id, "the channel names the account"
    assert call.targets == [CONFIG]
    assert call.calls_configuration_id == CONFIG.id
    assert call.custom_data == {"k": "v"}
    assert call.external_id == "ext-1"
    assert call.peer_call_id == "peer-1"
    assert started.call.state is CallState.CALLING
    assert rig.channel.ops == [("dial", call_id)]
    assert (await rig.stored(call_id)).peer_call_id == "peer-1"


async def test_a_call_placed_by_another_application_belongs_to_it(rig: Rig) -> None:
    call = await rig.control.create_call(
        CallRequest(Endpoint(EndpointType.WHATSAPP, phone_number=CALLEE), from_=BUSINESS, target=IVR)
    )
    assert call.targets == [IVR]
    assert call.calls_configuration_id is None


async def test_the_far_end_rings_then_answers(rig: Rig) -> None:
    call_id = await rig.outbound()
    peer = await rig.peer_of(call_id)
    await rig.control.remote_ringing(peer)
    await rig.events.wait_for(CallRinging, call_id)
    assert await rig.state(call_id) is CallState.RINGING
    rig.clock.advance(4)

    await rig.control.remote_answered(peer, "v=0\r\ns=callee answer\r\n")

    established = await rig.events.wait_for(CallEstablished, call_id)
    assert established.call.answer_time == rig.clock.now()
    assert rig.leg(call_id).remote_answer == "v=0\r\ns=callee answer\r\n"
    assert rig.events.names(call_id) == ["CallStarted", "CallRinging", "CallEstablished"]


async def test_an_outbound_call_cannot_be_answered_by_the_application(rig: Rig) -> None:
    call_id = await rig.outbound()
    with pytest.raises(InvalidCallState, match="cannot answer an outbound call"):
        await rig.control.answer(call_id)


async def test_no_answer_within_the_connect_timeout_ends_the_call_as_no_answer(rig: Rig) -> None:
    call_id = await rig.outbound(connect_timeout_s=60)
    await rig.control.remote_ringing(await rig.peer_of(call_id))
    rig.clock.advance(59.9)
    await settle()
    assert await rig.state(call_id) is CallState.RINGING

    rig.clock.advance(0.1)

    failed = await rig.events.wait_for(CallFailed, call_id)
    assert failed.call.state is CallState.NO_ANSWER
    assert failed.call.error is not None and failed.call.error.code is ErrorCode.NO_ANSWER
    assert failed.call.hangup_source is HangupSource.PLATFORM
    assert rig.channel.ops_of(call_id) == ["dial", "hangup"]


async def test_an_answer_cancels_the_connect_timeout(rig: Rig) -> None:
    call_id = await rig.answered_outbound(connect_timeout_s=60)
    rig.clock.advance(120)
    await settle()
    assert await rig.state(call_id) is CallState.ESTABLISHED


async def test_a_rejected_call_ends_as_busy(rig: Rig) -> None:
    call_id = await rig.outbound()
    await rig.control.remote_hangup(
        await rig.peer_of(call_id), code=ErrorCode.REJECTED, description="the user declined the call"
    )
    failed = await rig.events.wait_for(CallFailed, call_id)
    assert failed.call.state is CallState.BUSY
    assert failed.call.hangup_source is HangupSource.ENDPOINT
    assert rig.channel.ops_of(call_id) == ["dial"]


async def test_a_channel_failure_at_dial_fails_the_call_with_the_error(rig: Rig) -> None:
    rig.channel.fail("dial", "Graph API: (#138006) receiver is not reachable")
    with pytest.raises(ChannelError, match="receiver is not reachable"):
        await rig.control.create_call(rig.request())
    [call] = rig.calls.calls.values()
    assert call.state is CallState.FAILED
    assert call.error is not None
    assert call.error.code is ErrorCode.SERVICE_UNAVAILABLE
    assert "receiver is not reachable" in call.error.description
    assert rig.events.names(call.id) == ["CallStarted", "CallFailed"]
    assert not rig.control.is_live(call.id)
    assert rig.leg(call.id).closed
    assert rig.channel.ops == [("dial", call.id)], "nothing to hang up"


async def test_a_peer_refusing_with_403_ends_the_call_as_forbidden(rig: Rig) -> None:
    rig.channel.failures["dial"] = ChannelError("no permission", code=138006)
    rig.channel.failures["dial"].status_hint = 403
    with pytest.raises(ChannelError):
        await rig.control.create_call(rig.request())
    [call] = rig.calls.calls.values()
    assert call.error is not None and call.error.code is ErrorCode.FORBIDDEN


async def test_an_endpoint_without_a_channel_is_not_supported(rig: Rig) -> None:
    request = CallRequest(Endpoint(EndpointType.SIP, username="alice"), from_=BUSINESS)
    with pytest.raises(UnsupportedEndpoint):
        await rig.control.create_call(request)
    assert rig.calls.calls == {}


async def test_a_hangup_that_overtakes_the_dial_ends_the_call_once_it_exists(rig: Rig) -> None:
    ended_early: list[bool] = []

    async def hangup_webhook_first(call: Call, peer: str) -> None:
        await rig.control.remote_hangup(peer, code=ErrorCode.NORMAL_HANGUP, description="the user hung up")
        ended_early.append(rig.control.was_ended_early(peer))

    rig.channel.on_dial = hangup_webhook_first
    call = await rig.control.create_call(rig.request())

    assert ended_early == [True]
    assert call.state is CallState.CANCELLED
    assert call.hangup_source is HangupSource.ENDPOINT
    assert rig.events.names(call.id) == ["CallStarted", "CallFailed"]
    assert rig.channel.ops == [("dial", call.id)]
    assert not rig.control.is_live(call.id)


async def test_an_answer_that_overtakes_the_dial_establishes_the_call_once_it_exists(rig: Rig) -> None:
    async def answer_webhook_first(call: Call, peer: str) -> None:
        await rig.control.remote_answered(peer, "v=0\r\ns=callee answer\r\n")

    rig.channel.on_dial = answer_webhook_first
    call = await rig.control.create_call(rig.request(connect_timeout_s=10))
    await rig.events.wait_for(CallEstablished, call.id)
    rig.clock.advance(30)
    await settle()
    assert await rig.state(call.id) is CallState.ESTABLISHED


async def test_a_call_hung_up_while_it_is_dialled_is_hung_up_at_the_peer_once_dialled(rig: Rig) -> None:
    gate = rig.channel.block("dial")
    placing = asyncio.create_task(rig.control.create_call(rig.request()))
    await rig.events.wait_for(CallStarted)
    [call_id] = rig.calls.calls
    await settle()
    assert rig.channel.ops == [("dial", call_id)]
    await rig.control.hangup(call_id)
    gate.set()

    call = await placing

    assert call.state is CallState.CANCELLED
    assert call.peer_call_id == "peer-1"
    assert rig.channel.ops_of(call_id)[-1] == "hangup"
    assert (await rig.stored(call_id)).peer_call_id == "peer-1"


async def test_a_bad_sdp_answer_fails_the_call(rig: Rig) -> None:
    call_id = await rig.outbound()
    await rig.control.remote_answered(await rig.peer_of(call_id), "a bad answer")
    failed = await rig.events.wait_for(CallFailed, call_id)
    assert failed.call.state is CallState.FAILED
    assert failed.call.error is not None and failed.call.error.code is ErrorCode.INVALID_REQUEST


async def test_an_answered_call_is_hung_up_at_its_max_duration(rig: Rig) -> None:
    call_id = await rig.answered_outbound(max_duration_s=10)
    rig.clock.advance(9.9)
    await settle()
    assert await rig.state(call_id) is CallState.ESTABLISHED

    rig.clock.advance(0.1)

    finished = await rig.events.wait_for(CallFinished, call_id)
    assert finished.call.duration == 10
    assert finished.call.error is not None
    assert finished.call.error.description == "the call reached its maximum duration of 10 s"
    assert rig.channel.ops_of(call_id)[-1] == "hangup"


async def test_a_call_placed_with_recording_is_recorded_from_its_answer(rig: Rig) -> None:
    call_id = await rig.outbound(record=RecordingRequest(custom_data={"r": "1"}))
    assert rig.leg(call_id).recording is None
    await rig.control.remote_answered(await rig.peer_of(call_id), "v=0\r\n")
    await rig.events.wait_for(CallEstablished, call_id)
    assert rig.leg(call_id).recording is not None


async def test_ringing_that_overtakes_the_dial_rings_the_call_once_it_exists(rig: Rig) -> None:
    async def ringing_webhook_first(call: Call, peer: str) -> None:
        await rig.control.remote_ringing(peer)

    rig.channel.on_dial = ringing_webhook_first
    call = await rig.control.create_call(rig.request())
    await rig.events.wait_for(CallRinging, call.id)
    assert await rig.state(call.id) is CallState.RINGING


async def test_a_repeated_answer_changes_nothing(rig: Rig) -> None:
    call_id = await rig.answered_outbound()
    answer_time = (await rig.control.get_call(call_id)).answer_time
    rig.clock.advance(5)
    await rig.control.remote_answered(await rig.peer_of(call_id), "v=0\r\ns=again\r\n")
    await rig.control.remote_ringing(await rig.peer_of(call_id))
    await settle()
    assert (await rig.control.get_call(call_id)).answer_time == answer_time
    assert rig.events.names(call_id) == ["CallStarted", "CallEstablished"]


async def test_an_unconfirmed_dial_is_bound_by_the_signal_that_names_the_call(rig: Rig) -> None:
    rig.channel.unconfirmed_dials = True
    call_id = await rig.outbound()
    assert (await rig.control.get_call(call_id)).peer_call_id is None
    await rig.control.remote_ringing("meta-1", call_hint=call_id)
    await rig.events.wait_for(CallRinging, call_id)
    await rig.control.remote_answered("meta-1", "v=0\r\n", call_hint=call_id)
    await rig.events.wait_for(CallEstablished, call_id)
    call = await rig.control.get_call(call_id)
    assert (call.state, call.peer_call_id) == (CallState.ESTABLISHED, "meta-1")
    assert rig.channel.ops_of(call_id) == ["dial"], "nothing was dialled twice"


async def test_a_far_end_call_outliving_its_unconfirmed_call_is_hung_up(rig: Rig) -> None:
    rig.channel.unconfirmed_dials = True
    call_id = await rig.outbound(connect_timeout_s=5)
    rig.clock.advance(5)
    failed = await rig.events.wait_for(CallFailed, call_id)
    assert failed.call.state is CallState.NO_ANSWER
    await rig.control.remote_ringing("meta-late", call_hint=call_id)
    await settle()
    assert rig.channel.ops_of(call_id) == ["dial", "hangup"], "the late far-end call was hung up"
    stored = await rig.control.get_call(call_id)
    assert (stored.state, stored.peer_call_id) == (CallState.NO_ANSWER, "meta-late")
    await rig.control.remote_hangup("meta-late", call_hint=call_id)
    await settle()
    assert rig.channel.ops_of(call_id) == ["dial", "hangup"], "a hang-up is not answered with another"
