"""Admission before anything is dialled: the PSTN ban, per-endpoint outbound policies, and the outcomes
the policies are told about."""

import asyncio
from datetime import timedelta

import pytest

from support.control_rig import BUSINESS, CALLEE, Rig
from support.fakes import settle
from switchboard.core.admission import CallPermissionPolicy
from switchboard.core.errors import ChannelError, NoCallPermission, PolicyViolation, PstnForbidden
from switchboard.core.events import CallEstablished, CallStarted
from switchboard.core.models import Call, Endpoint, EndpointType, ErrorCode, PermissionStatus
from switchboard.core.outbound import CallRequest
from switchboard.core.ports import PermissionRecord

SENDER = "sender-1"


class Refuse:
    """An outbound policy that refuses every call and remembers what it was told."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.outcomes: list[bool] = []

    async def check(self, call: Call) -> None:
        self.checked.append(call.to)
        raise PolicyViolation(f"calls to {call.to} are not allowed now")

    async def outcome(self, call: Call, *, connected: bool) -> None:
        self.outcomes.append(connected)


def permission_policy(rig: Rig) -> CallPermissionPolicy:
    policy = CallPermissionPolicy(rig.permissions, rig.clock)
    rig.control.add_outbound_policy(EndpointType.WHATSAPP, policy)
    return policy


async def grant(rig: Rig, user: str = CALLEE) -> None:
    await rig.permissions.save(PermissionRecord(SENDER, user, status=PermissionStatus.PERMANENT))


async def record(rig: Rig, user: str = CALLEE) -> PermissionRecord:
    found = await rig.permissions.get(SENDER, user)
    assert found is not None
    return found


def assert_nothing_placed(rig: Rig) -> None:
    assert rig.channel.ops == []
    assert rig.calls.calls == {}
    assert rig.engine.legs == {}
    assert rig.events.events == []


async def test_a_pstn_endpoint_is_refused_before_anything_is_dialled(rig: Rig) -> None:
    request = CallRequest(Endpoint(EndpointType.PHONE, phone_number="+441632960000"), from_=BUSINESS)
    with pytest.raises(PstnForbidden):
        await rig.control.create_call(request)
    assert_nothing_placed(rig)


async def test_an_outbound_policy_refusal_refuses_before_anything_is_dialled(rig: Rig) -> None:
    refuse = Refuse()
    rig.control.add_outbound_policy(EndpointType.WHATSAPP, refuse)
    with pytest.raises(PolicyViolation, match=f"calls to {CALLEE} are not allowed now"):
        await rig.control.create_call(rig.request())
    assert refuse.checked == [CALLEE]
    assert_nothing_placed(rig)


async def test_policies_of_other_endpoint_types_do_not_apply(rig: Rig) -> None:
    rig.control.add_outbound_policy(EndpointType.WEBRTC, Refuse())
    await rig.outbound()


async def test_a_whatsapp_call_without_the_users_permission_is_refused_before_dialling(rig: Rig) -> None:
    permission_policy(rig)
    with pytest.raises(NoCallPermission, match=f"user {CALLEE} has not granted call permission"):
        await rig.control.create_call(rig.request())
    assert_nothing_placed(rig)


async def test_an_expired_temporary_permission_is_refused(rig: Rig) -> None:
    permission_policy(rig)
    await rig.permissions.save(
        PermissionRecord(
            SENDER,
            CALLEE,
            status=PermissionStatus.TEMPORARY,
            expires_at=rig.clock.now() + timedelta(hours=1),
        )
    )
    await rig.outbound()
    rig.clock.advance(3600)
    with pytest.raises(NoCallPermission, match="permission expired"):
        await rig.control.create_call(rig.request())


async def test_a_connected_call_is_recorded_as_connected(rig: Rig) -> None:
    permission_policy(rig)
    await grant(rig)
    await rig.answered_outbound()
    stored = await record(rig)
    assert stored.connected_calls == [rig.clock.now()]
    assert stored.unanswered_in_a_row == 0


@pytest.mark.parametrize("how", ["timeout", "rejected", "cancelled"])
async def test_an_unanswered_call_is_recorded_as_unanswered(rig: Rig, how: str) -> None:
    permission_policy(rig)
    await grant(rig)
    call_id = await rig.outbound(connect_timeout_s=30)
    match how:
        case "timeout":
            rig.clock.advance(30)
        case "rejected":
            await rig.control.remote_hangup(await rig.peer_of(call_id), code=ErrorCode.REJECTED)
        case "cancelled":
            await rig.control.hangup(call_id)
    await settle()
    assert not rig.control.is_live(call_id)
    stored = await record(rig)
    assert stored.unanswered_in_a_row == 1
    assert stored.connected_calls == []


async def test_an_answered_call_that_ends_is_not_also_recorded_as_unanswered(rig: Rig) -> None:
    permission_policy(rig)
    await grant(rig)
    call_id = await rig.answered_outbound()
    await rig.control.hangup(call_id)
    assert (await record(rig)).unanswered_in_a_row == 0


async def test_four_unanswered_calls_in_a_row_revoke_the_permission(rig: Rig) -> None:
    permission_policy(rig)
    await grant(rig)
    for _ in range(4):
        call_id = await rig.outbound(connect_timeout_s=30)
        rig.clock.advance(30)
        await settle()
        assert not rig.control.is_live(call_id)
    assert (await record(rig)).status is PermissionStatus.NO_PERMISSION
    with pytest.raises(NoCallPermission):
        await rig.control.create_call(rig.request())


async def test_a_call_that_could_not_be_dialled_is_not_counted_as_unanswered(rig: Rig) -> None:
    permission_policy(rig)
    await grant(rig)
    rig.channel.fail("dial", "Graph API: 503")
    for _ in range(4):
        with pytest.raises(ChannelError):
            await rig.control.create_call(rig.request())
    stored = await record(rig)
    assert stored.unanswered_in_a_row == 0
    assert stored.status is PermissionStatus.PERMANENT


async def test_a_call_hung_up_while_it_is_dialled_is_counted_once_it_reached_the_peer(rig: Rig) -> None:
    permission_policy(rig)
    await grant(rig)
    gate = rig.channel.block("dial")
    placing = asyncio.create_task(rig.control.create_call(rig.request()))
    await rig.events.wait_for(CallStarted)
    [call_id] = rig.calls.calls
    await rig.control.hangup(call_id)
    assert (await record(rig)).unanswered_in_a_row == 0
    gate.set()
    await placing
    assert (await record(rig)).unanswered_in_a_row == 1


async def test_outcomes_reach_every_policy_of_the_endpoint_type(rig: Rig) -> None:
    class Allow(Refuse):
        async def check(self, call: Call) -> None:
            self.checked.append(call.to)

    allow = Allow()
    rig.control.add_outbound_policy(EndpointType.WHATSAPP, allow)
    answered = await rig.answered_outbound()
    await rig.events.wait_for(CallEstablished, answered)
    unanswered = await rig.outbound()
    await rig.control.hangup(unanswered)
    assert allow.checked == [CALLEE, CALLEE]
    assert allow.outcomes == [True, False]
