"""The SIP channel between a PBX (our own endpoint, on loopback) and a core that records what it hears."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from support.fakes import InMemoryChannelRecords
from support.sipp import free_port, needs_sipp, run_sipp, sipp_args, sipp_server
from switchboard.channels.sip.channel import SipChannel, failure_code, hold_answer, sip_headers
from switchboard.channels.sip.digest import Credentials
from switchboard.channels.sip.endpoint import EndpointConfig, OutgoingCall, SipCall, SipEndpoint
from switchboard.channels.sip.events import Answered, Confirmed, Failed, HungUp, Progress, SipCallEvent
from switchboard.channels.sip.message import Address, SipURI
from switchboard.channels.sip.registrations import TrunkRegistrations
from switchboard.channels.sip.transaction import TimerValues
from switchboard.channels.sip.transport import ListenSpec, Peer
from switchboard.channels.sip.trunks import (
    BillingPackage,
    BillingPackageType,
    DigestCredentials,
    RegisteredTrunk,
    RegistrationStatus,
    SelectionStrategy,
    StaticTrunk,
    TrunkDirectory,
    new_trunk_id,
    parse_hosts,
)
from switchboard.core.lifecycle import InboundCall
from switchboard.core.models import (
    Call,
    CallError,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    InboundAction,
)

pytestmark = pytest.mark.timeout(60)
SCENARIOS = Path(__file__).parent / "scenarios"

SDP = "v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
STEP = 20.0
"""Bound on waiting for one event; a test that hits it failed, it does not measure time."""


@dataclass
class RecordingCore:
    """Takes every inbound call (or refuses it with `refuse`) and records what the channel reports."""

    channel: SipChannel | None = None
    refuse: ErrorCode | None = None
    inbound: asyncio.Queue[tuple[InboundCall, Call]] = field(default_factory=asyncio.Queue)
    reports: asyncio.Queue[tuple[str, str, dict[str, Any]]] = field(default_factory=asyncio.Queue)

    async def receive_inbound(self, inbound: InboundCall) -> Call | None:
        call = Call(
            id=f"call-{inbound.peer_call_id}",
            endpoint=inbound.endpoint,
            direction=Direction.INBOUND,
            from_=inbound.endpoint.address,
            to=inbound.to,
            peer_call_id=inbound.peer_call_id,
        )
        if self.refuse is not None:
            call.error = CallError(self.refuse, "refused by the test")
            assert self.channel is not None
            await self.channel.reject(call)
            return None
        self.inbound.put_nowait((inbound, call))
        return call

    async def remote_ringing(self, peer_call_id: str, **kwargs: Any) -> None:
        self.reports.put_nowait(("ringing", peer_call_id, kwargs))

    async def remote_answered(self, peer_call_id: str, sdp_answer: str, **kwargs: Any) -> None:
        self.reports.put_nowait(("answered", peer_call_id, {"sdp": sdp_answer, **kwargs}))

    async def remote_hangup(self, peer_call_id: str, **kwargs: Any) -> None:
        self.reports.put_nowait(("hangup", peer_call_id, kwargs))

    def remote_dtmf(self, peer_call_id: str, digit: str, duration_ms: int) -> bool:
        self.reports.put_nowait(("dtmf", peer_call_id, {"digit": digit, "duration_ms": duration_ms}))
        return True


@dataclass
class Rig:
    channel: SipChannel
    core: RecordingCore
    pbx: SipEndpoint
    trunk: StaticTrunk

    def dial(self, user: str = "bob", headers: tuple[tuple[str, str], ...] = ()) -> OutgoingCall:
        host, port = self.channel.endpoint.bound_address("udp")
        return self.pbx.invite(
            SipURI(host, user, port),
            Peer("udp", host, port),
            from_=Address(SipURI("127.0.0.1", "alice"), "Alice"),
            sdp=SDP.encode(),
            headers=headers,
        )


def static_trunk(
    *, sources: tuple[str, ...], destinations: tuple[str, ...] = (), limit: int = 2
) -> StaticTrunk:
    return StaticTrunk(
        id=new_trunk_id(),
        name="pbx",
        channel_limit=limit,
        billing_package=BillingPackage(BillingPackageType.METERED),
        source_hosts=parse_hosts(sources, "sourceHosts"),
        destination_hosts=parse_hosts(destinations, "destinationHosts"),
    )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    trunks = TrunkDirectory(InMemoryChannelRecords())
    async with SipEndpoint(config) as pbx:
        host, port = pbx.bound_address("udp")
        trunk = static_trunk(sources=("127.0.0.1",), destinations=(f"{host}:{port}",), limit=1)
        await trunks.create(trunk)
        channel = SipChannel(SipEndpoint(config), trunks)
        core = RecordingCore(channel)
        channel.attach(core)  # type: ignore[arg-type]
        runner = asyncio.create_task(channel.run())
        try:
            await asyncio.wait_for(channel.ready.wait(), STEP)
            yield Rig(channel, core, pbx, trunk)
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner


async def no_active_calls(rig: Rig) -> None:
    """Until the trunk counts no call (each call's follower releases it when the call is over)."""
    async with asyncio.timeout(STEP):
        while rig.channel.trunks.active_calls(rig.trunk.id):
            await asyncio.sleep(0.01)


async def next_of(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), STEP)


async def sip_event(call: SipCall) -> SipCallEvent:
    return await asyncio.wait_for(call.events.get(), STEP)


async def test_a_pbx_call_enters_routing_rings_answers_holds_and_hangs_up(rig: Rig) -> None:
    outgoing = rig.dial(headers=(("X-Ticket", "42"),))
    inbound, call = await next_of(rig.core.inbound)
    assert inbound.target.action is InboundAction.CALL_ROUTING
    assert inbound.endpoint == Endpoint(
        EndpointType.SIP, username="alice", sip_trunk_id=rig.trunk.id, display_name="Alice"
    )
    assert inbound.to == "bob" and inbound.remote_offer == SDP
    assert inbound.custom_data == inbound.sip_headers == {"X-Ticket": "42"}
    await rig.channel.ring(call)
    ringing = await sip_event(outgoing)
    assert isinstance(ringing, Progress) and ringing.response.status == 180
    await rig.channel.pre_answer(call, SDP)
    early = await sip_event(outgoing)
    assert isinstance(early, Progress) and early.response.status == 183 and early.sdp == SDP.encode()
    await rig.channel.answer(call, SDP)
    assert isinstance(await sip_event(outgoing), Answered)
    held = await outgoing.request("INVITE", body=SDP.encode() + b"a=sendonly\r\n")
    assert held is not None and held.status == 200
    assert b"a=recvonly" in held.body and b"o=- 7 8 IN IP4" in held.body
    assert rig.pbx.active_calls == 1
    await outgoing.bye()
    assert await next_of(rig.core.reports) == (
        "hangup",
        outgoing.call_id,
        {"description": "the SIP peer hung up"},
    )
    await no_active_calls(rig)


async def test_a_second_call_over_the_channel_limit_gets_503(rig: Rig) -> None:
    first = rig.dial()
    _, call = await next_of(rig.core.inbound)
    await rig.channel.ring(call)
    assert isinstance(await sip_event(first), Progress)
    second = rig.dial()
    refused = await sip_event(second)
    assert isinstance(refused, Failed) and refused.status == 503
    await rig.channel.hangup(call)
    ended = await sip_event(first)
    assert isinstance(ended, Failed)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.FORBIDDEN, 403),
        (ErrorCode.REJECTED, 603),
        (ErrorCode.BUSY, 486),
        (ErrorCode.NO_ANSWER, 480),
        (ErrorCode.SERVICE_UNAVAILABLE, 503),
    ],
)
async def test_a_refused_call_gets_its_status_and_reason(rig: Rig, code: ErrorCode, status: int) -> None:
    rig.core.refuse = code
    outgoing = rig.dial()
    failed = await sip_event(outgoing)
    assert isinstance(failed, Failed) and failed.status == status
    assert failed.response is not None
    reason = failed.response.headers.get("Reason") or ""
    assert f"cause={status}" in reason and code.value in reason
    await no_active_calls(rig)


async def test_we_dial_the_pbx_and_report_its_answer_and_hang_up(rig: Rig) -> None:
    call = Call(
        id="out-1",
        endpoint=Endpoint(EndpointType.SIP, username="bob", sip_trunk_id=rig.trunk.id),
        direction=Direction.OUTBOUND,
        from_="alice",
        to="bob",
        sip_headers={"X-Ticket": "42", "X-Bad Name": "dropped", "X-Note": "two\r\nlines"},
    )
    await rig.channel.prepare_outbound(call)
    result = await rig.channel.dial(call, SDP)
    incoming = await asyncio.wait_for(rig.pbx.incoming.get(), STEP)
    assert incoming.invite.uri.user == "bob" and incoming.invite.from_.uri.user == "alice"
    assert sip_headers(incoming.invite) == {"X-Ticket": "42", "X-Note": "two lines"}
    incoming.progress(180)
    assert await next_of(rig.core.reports) == ("ringing", result.peer_call_id, {})
    incoming.answer(SDP.encode())
    kind, peer, details = await next_of(rig.core.reports)
    assert (kind, peer, details["sdp"]) == ("answered", result.peer_call_id, SDP)
    call.peer_call_id = result.peer_call_id
    await rig.channel.hangup(call)
    events = [await sip_event(incoming) for _ in range(2)]
    assert [type(e) for e in events] == [Confirmed, HungUp]
    await no_active_calls(rig)


def test_sip_failures_map_to_core_error_codes() -> None:
    assert [failure_code(s) for s in (486, 480, 408, 603, 403, 404, 487, 500, 503, 420)] == [
        ErrorCode.BUSY,
        ErrorCode.NO_ANSWER,
        ErrorCode.NO_ANSWER,
        ErrorCode.REJECTED,
        ErrorCode.FORBIDDEN,
        ErrorCode.DESTINATION_NOT_FOUND,
        ErrorCode.CANCELLED,
        ErrorCode.SERVICE_UNAVAILABLE,
        ErrorCode.SERVICE_UNAVAILABLE,
        ErrorCode.DESTINATION_UNAVAILABLE,
    ]


def test_hold_and_resume_answers_keep_our_sdp_and_bump_its_version() -> None:
    held = hold_answer(SDP.encode(), b"v=0\r\na=sendonly\r\n")
    assert held.endswith(b"a=recvonly\r\n") and b"o=- 7 8 IN IP4" in held
    resumed = hold_answer(held, b"v=0\r\na=sendrecv\r\n")
    assert resumed.endswith(b"a=sendrecv\r\n") and b"a=recvonly" not in resumed and b"o=- 7 9 " in resumed


async def test_a_registered_trunk_pbx_registers_calls_in_and_is_called() -> None:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    trunks = TrunkDirectory(InMemoryChannelRecords())
    credentials = DigestCredentials.make("branch1", "s3cret")
    trunk = RegisteredTrunk(
        id=new_trunk_id(),
        name="branch",
        channel_limit=2,
        billing_package=BillingPackage(BillingPackageType.METERED),
        credentials=credentials,
        invite_authentication=True,
    )
    await trunks.create(trunk)
    endpoint = SipEndpoint(config)
    registrations = TrunkRegistrations(trunks, lambda: endpoint.now)
    endpoint.registration = registrations
    channel = SipChannel(endpoint, trunks, registrations)
    core = RecordingCore(channel)
    channel.attach(core)  # type: ignore[arg-type]
    runner = asyncio.create_task(channel.run())
    try:
        async with SipEndpoint(config) as pbx:
            await asyncio.wait_for(channel.ready.wait(), STEP)
            host, port = endpoint.bound_address("udp")
            server = Peer("udp", host, port)
            secret = Credentials("branch1", "s3cret")
            assert registrations.registration_status(trunk.id) is RegistrationStatus.UNREGISTERED
            register = pbx.new_request(
                "REGISTER",
                SipURI(host, None, port),
                Address(SipURI(host, "branch1")),
                Address(SipURI(host, "branch1")),
            )
            register.headers.add("Contact", str(pbx.contact_for("udp", "branch1")))
            wrong = await pbx.send_request(register, server, Credentials("branch1", "wrong"))
            assert wrong is not None and wrong.status == 401
            register = pbx.new_request(
                "REGISTER",
                SipURI(host, None, port),
                Address(SipURI(host, "branch1")),
                Address(SipURI(host, "branch1")),
            )
            register.headers.add("Contact", str(pbx.contact_for("udp", "branch1")))
            registered = await pbx.send_request(register, server, secret)
            assert registered is not None and registered.status == 200
            assert registrations.registration_status(trunk.id) is RegistrationStatus.REGISTERED

            outgoing = pbx.invite(
                SipURI(host, "bob", port),
                server,
                from_=Address(SipURI(host, "branch1")),
                sdp=SDP.encode(),
                credentials=secret,
            )
            inbound, routed = await next_of(core.inbound)
            assert inbound.endpoint.sip_trunk_id == trunk.id
            await channel.ring(routed)
            assert isinstance(await sip_event(outgoing), Progress)

            call = Call(
                id="out-2",
                endpoint=Endpoint(EndpointType.SIP, username="101", sip_trunk_id=trunk.id),
                direction=Direction.OUTBOUND,
                from_="alice",
                to="101",
            )
            await channel.prepare_outbound(call)
            await channel.dial(call, SDP)
            ringing = await asyncio.wait_for(pbx.incoming.get(), STEP)
            assert ringing.invite.uri.user == "101"
            assert ringing.invite.uri.port == pbx.bound_address("udp")[1]
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_a_destination_that_does_not_answer_options_is_skipped() -> None:
    quick = TimerValues(t1=0.02, t2=0.16, t4=0.2)
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),), timers=quick)
    trunks = TrunkDirectory(InMemoryChannelRecords())
    async with SipEndpoint(config) as pbx:
        silent = free_udp_port()
        host, port = pbx.bound_address("udp")
        trunk = static_trunk(sources=("192.0.2.1",), destinations=(f"127.0.0.1:{silent}", f"{host}:{port}"))
        trunk = replace(trunk, sip_options=True)
        await trunks.create(trunk)
        channel = SipChannel(SipEndpoint(config), trunks)
        channel.health_interval_s = 3600
        channel.attach(RecordingCore(channel))  # type: ignore[arg-type]
        runner = asyncio.create_task(channel.run())
        try:
            await asyncio.wait_for(channel.ready.wait(), STEP)
            await channel.check_health()
            call = Call(
                id="out-3",
                endpoint=Endpoint(EndpointType.SIP, username="bob", sip_trunk_id=trunk.id),
                direction=Direction.OUTBOUND,
                from_="alice",
                to="bob",
            )
            await channel.prepare_outbound(call)
            await channel.dial(call, SDP)
            incoming = await asyncio.wait_for(pbx.incoming.get(), STEP)
            assert incoming.invite.uri.port == port
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@needs_sipp
async def test_keys_sipp_sends_in_info_reach_the_core(rig: Rig, tmp_path: Path) -> None:
    host, port = rig.channel.endpoint.bound_address("udp")
    args = ["-sf", str(SCENARIOS / "info_dtmf.xml"), *sipp_args("udp", free_port("udp")), f"{host}:{port}"]
    caller = asyncio.create_task(run_sipp(args, tmp_path))
    _, call = await next_of(rig.core.inbound)
    await rig.channel.answer(call, SDP)
    result = await caller
    assert result.returncode == 0, result.output
    reports = [await next_of(rig.core.reports) for _ in range(3)]
    assert reports == [
        ("dtmf", call.peer_call_id, {"digit": "5", "duration_ms": 160}),
        ("dtmf", call.peer_call_id, {"digit": "#", "duration_ms": 250}),
        ("hangup", call.peer_call_id, {"description": "the SIP peer hung up"}),
    ]
    await no_active_calls(rig)


@contextlib.asynccontextmanager
async def running_channel(
    trunk: StaticTrunk, timers: TimerValues | None = None
) -> AsyncIterator[tuple[SipChannel, RecordingCore]]:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),), timers=timers or TimerValues())
    trunks = TrunkDirectory(InMemoryChannelRecords())
    await trunks.create(trunk)
    channel = SipChannel(SipEndpoint(config), trunks)
    channel.health_interval_s = 3600
    core = RecordingCore(channel)
    channel.attach(core)  # type: ignore[arg-type]
    runner = asyncio.create_task(channel.run())
    try:
        await asyncio.wait_for(channel.ready.wait(), STEP)
        yield channel, core
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def dial_over(channel: SipChannel, trunk: StaticTrunk, call_id: str) -> Call:
    call = Call(
        id=call_id,
        endpoint=Endpoint(EndpointType.SIP, username="bob", sip_trunk_id=trunk.id),
        direction=Direction.OUTBOUND,
        from_="alice",
        to="bob",
    )
    await channel.prepare_outbound(call)
    call.peer_call_id = (await channel.dial(call, SDP)).peer_call_id
    return call


@needs_sipp
async def test_failover_tries_the_next_host_when_one_does_not_answer(tmp_path: Path) -> None:
    uas_port = free_port("udp")
    silent = f"127.0.0.1:{free_udp_port()}"
    trunk = static_trunk(sources=("192.0.2.1",), destinations=(silent, f"127.0.0.1:{uas_port}"))
    quick = TimerValues(t1=0.02, t2=0.16, t4=0.2)
    uas = ["-sn", "uas", *sipp_args("udp", uas_port)]
    async with sipp_server(uas, tmp_path), running_channel(trunk, quick) as (channel, core):
        call = await dial_over(channel, trunk, "out-failover")
        reports = core.reports
        kind, peer, details = await next_of(reports)
        while kind == "ringing":
            kind, peer, details = await next_of(reports)
        assert (kind, peer) == ("answered", call.peer_call_id)
        assert "m=audio" in details["sdp"]
        await channel.hangup(call)
        await no_active_calls_on(channel, trunk)


async def test_failover_moves_on_after_503_but_not_after_486() -> None:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    async with SipEndpoint(config) as first, SipEndpoint(config) as second:
        hosts = tuple(f"127.0.0.1:{pbx.bound_address('udp')[1]}" for pbx in (first, second))
        trunk = static_trunk(sources=("192.0.2.1",), destinations=hosts)
        async with running_channel(trunk) as (channel, core):
            reports = core.reports
            unavailable = await dial_over(channel, trunk, "out-503")
            (await asyncio.wait_for(first.incoming.get(), STEP)).reject(503)
            taken = await asyncio.wait_for(second.incoming.get(), STEP)
            taken.answer(SDP.encode())
            kind, peer, _ = await next_of(reports)
            assert (kind, peer) == ("answered", unavailable.peer_call_id)
            await channel.hangup(unavailable)

            busy = await dial_over(channel, trunk, "out-486")
            (await asyncio.wait_for(first.incoming.get(), STEP)).reject(486)
            kind, peer, details = await next_of(reports)
            assert (kind, peer, details["code"]) == ("hangup", busy.peer_call_id, ErrorCode.BUSY)
            assert second.incoming.empty()
            await no_active_calls_on(channel, trunk)


async def test_round_robin_spreads_new_calls_over_the_hosts_and_fails_over_too() -> None:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    async with SipEndpoint(config) as first, SipEndpoint(config) as second:
        hosts = tuple(f"127.0.0.1:{pbx.bound_address('udp')[1]}" for pbx in (first, second))
        trunk = replace(
            static_trunk(sources=("192.0.2.1",), destinations=hosts, limit=5),
            strategy=SelectionStrategy.ROUND_ROBIN,
        )
        async with running_channel(trunk) as (channel, _):
            for index in range(4):
                await dial_over(channel, trunk, f"out-rr-{index}")
            got = [await asyncio.wait_for(pbx.incoming.get(), STEP) for pbx in (first, second, first, second)]
            assert len({call.call_id for call in got}) == 4
            await dial_over(channel, trunk, "out-rr-turned-away")
            (await asyncio.wait_for(first.incoming.get(), STEP)).reject(503)
            assert (await asyncio.wait_for(second.incoming.get(), STEP)).invite.uri.user == "bob"


async def no_active_calls_on(channel: SipChannel, trunk: StaticTrunk) -> None:
    async with asyncio.timeout(STEP):
        while channel.trunks.active_calls(trunk.id):
            await asyncio.sleep(0.01)
