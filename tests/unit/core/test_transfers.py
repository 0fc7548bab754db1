"""Application transfers: asked, accepted, rejected, timed out, failed by the call's end, refused."""

import pytest

from support.control_rig import CONFIG, IVR, OTHER_CONFIG, Rig
from support.fakes import settle
from switchboard.core.errors import InvalidCallState, PolicyViolation
from switchboard.core.events import (
    CallFailed,
    DialogEstablished,
    TransferFailed,
    TransferFinished,
    TransferRequested,
)
from switchboard.core.models import CallState, InboundAction, InboundTarget
from switchboard.core.transfers import TransferNotFound


async def test_a_transfer_asks_the_destination_with_ids(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    transfer_id = await rig.control.transfer(call_id, OTHER_CONFIG, custom_data={"lang": "de"})
    requested = await rig.events.wait_for(TransferRequested, call_id)
    assert requested.transfer_id == transfer_id
    assert requested.source == CONFIG
    assert requested.destination == OTHER_CONFIG
    assert requested.custom_data == {"lang": "de"}
    call = await rig.control.get_call(call_id)
    assert call.targets == [CONFIG], "the call stays with its application until the transfer is accepted"


async def test_an_accepted_transfer_hands_the_call_over(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    transfer_id = await rig.control.transfer(call_id, OTHER_CONFIG, custom_data={"lang": "de"})

    await rig.control.accept_transfer(call_id, transfer_id)

    finished = await rig.events.wait_for(TransferFinished, call_id)
    assert (finished.transfer_id, finished.source, finished.destination) == (
        transfer_id,
        CONFIG,
        OTHER_CONFIG,
    )
    call = await rig.control.get_call(call_id)
    assert call.targets == [CONFIG, OTHER_CONFIG]
    assert call.calls_configuration_id == OTHER_CONFIG.id
    assert call.custom_data["lang"] == "de"
    assert (await rig.stored(call_id)).targets == [CONFIG, OTHER_CONFIG]
    assert finished.call.calls_configuration_id == OTHER_CONFIG.id
    rig.clock.advance(60)
    await settle()
    assert rig.events.find(TransferFailed, call_id) == []


async def test_a_call_handed_to_an_ivr_has_no_calls_configuration_and_can_come_back(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    to_ivr = await rig.control.transfer(call_id, IVR)
    await rig.control.accept_transfer(call_id, to_ivr)
    assert (await rig.control.get_call(call_id)).calls_configuration_id is None
    back = await rig.control.transfer(call_id, CONFIG)
    await rig.control.accept_transfer(call_id, back)
    call = await rig.control.get_call(call_id)
    assert call.targets == [CONFIG, IVR, CONFIG]
    assert call.calls_configuration_id == CONFIG.id


async def test_a_rejected_transfer_fails_and_the_call_stays(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    transfer_id = await rig.control.transfer(call_id, OTHER_CONFIG)
    await rig.control.reject_transfer(call_id, transfer_id)
    failed = await rig.events.wait_for(TransferFailed, call_id)
    assert failed.transfer_id == transfer_id
    assert failed.reason == "rejected by the application"
    call = await rig.control.get_call(call_id)
    assert call.state is CallState.ESTABLISHED
    assert call.targets == [CONFIG]
    with pytest.raises(TransferNotFound):
        await rig.control.accept_transfer(call_id, transfer_id)


async def test_a_transfer_not_accepted_in_time_fails(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    transfer_id = await rig.control.transfer(call_id, OTHER_CONFIG, timeout_s=30)
    rig.clock.advance(29.9)
    await settle()
    assert rig.events.find(TransferFailed, call_id) == []

    rig.clock.advance(0.1)

    failed = await rig.events.wait_for(TransferFailed, call_id)
    assert failed.transfer_id == transfer_id
    assert failed.reason == "the destination did not accept the transfer in time"
    with pytest.raises(TransferNotFound):
        await rig.control.accept_transfer(call_id, transfer_id)
    assert await rig.state(call_id) is CallState.ESTABLISHED
    await rig.control.transfer(call_id, OTHER_CONFIG)


async def test_a_call_that_ends_while_a_transfer_is_pending_fails_the_transfer_first(rig: Rig) -> None:
    call_id = await rig.inbound()
    transfer_id = await rig.control.transfer(call_id, IVR)
    await rig.control.remote_hangup(await rig.peer_of(call_id))
    failed = await rig.events.wait_for(TransferFailed, call_id)
    assert failed.transfer_id == transfer_id
    assert failed.reason == "the call ended"
    await rig.events.wait_for(CallFailed, call_id)
    assert rig.events.names(call_id)[-2:] == ["TransferFailed", "CallFailed"]


async def test_a_second_transfer_is_refused_while_one_is_pending(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    await rig.control.transfer(call_id, OTHER_CONFIG)
    with pytest.raises(InvalidCallState, match="start a second transfer"):
        await rig.control.transfer(call_id, IVR)


async def test_a_call_in_a_dialog_cannot_be_transferred(rig: Rig) -> None:
    parent = await rig.established_inbound()
    child = await rig.answered_outbound()
    await rig.control.connect(parent, child)
    await rig.events.wait_for(DialogEstablished, parent)
    for call_id in (parent, child):
        with pytest.raises(InvalidCallState, match="unbridge it first"):
            await rig.control.transfer(call_id, IVR)


async def test_a_call_cannot_be_transferred_to_its_own_application(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    with pytest.raises(InvalidCallState, match="to its own application"):
        await rig.control.transfer(call_id, CONFIG)


async def test_a_destination_that_no_application_takes_is_refused(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    with pytest.raises(PolicyViolation, match="CONTACT_CENTER is not available"):
        await rig.control.transfer(call_id, InboundTarget(InboundAction.CONTACT_CENTER, "queue"))
    rig.ivr.refusals["menu"] = "scenario 'menu' does not exist"
    with pytest.raises(PolicyViolation, match="scenario 'menu' does not exist"):
        await rig.control.transfer(call_id, IVR)
    assert rig.events.find(TransferRequested, call_id) == []


async def test_accepting_an_unknown_transfer_is_not_found(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    await rig.control.transfer(call_id, OTHER_CONFIG)
    with pytest.raises(TransferNotFound, match="no pending transfer 'nope'"):
        await rig.control.accept_transfer(call_id, "nope")
    with pytest.raises(TransferNotFound):
        await rig.control.reject_transfer(call_id, "nope")


async def test_an_ended_call_cannot_be_transferred(rig: Rig) -> None:
    call_id = await rig.established_inbound()
    await rig.control.hangup(call_id)
    with pytest.raises(InvalidCallState, match="in state FINISHED"):
        await rig.control.transfer(call_id, OTHER_CONFIG)
