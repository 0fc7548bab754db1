"""The SIP stack against sipp on loopback: sipp as the caller (our UAS) and as the callee (our UAC)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from support.sipp import free_port, needs_sipp, run_sipp, sipp_args, sipp_server, wait_listening
from switchboard.channels.sip.digest import Authenticated, DigestServer, passwords
from switchboard.channels.sip.endpoint import EndpointConfig, IncomingCall, SipEndpoint
from switchboard.channels.sip.events import (
    AckTimeout,
    Answered,
    Cancelled,
    Confirmed,
    HungUp,
    Progress,
    SipCallEvent,
)
from switchboard.channels.sip.message import Address, SipURI
from switchboard.channels.sip.registrar import DigestRegistration, Registrar
from switchboard.channels.sip.transaction import TimerValues
from switchboard.channels.sip.transport import ListenSpec, Peer, TransportName

pytestmark = [needs_sipp, pytest.mark.timeout(90)]

SCENARIOS = Path(__file__).parent / "scenarios"
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
STEP = 20.0
"""Bound on waiting for one event; a test that hits it failed, it does not measure time."""

Handler = Callable[[IncomingCall, list[SipCallEvent]], Awaitable[None]]


async def endpoint(transport: TransportName, **kwargs: object) -> SipEndpoint:
    config = EndpointConfig(listen=(ListenSpec(transport, "127.0.0.1", 0),), **kwargs)  # type: ignore[arg-type]
    sip = SipEndpoint(config)
    await sip.start()
    return sip


async def next_event(call: IncomingCall | object) -> SipCallEvent:
    return await asyncio.wait_for(call.events.get(), STEP)  # type: ignore[attr-defined]


async def until_over(call: IncomingCall, seen: list[SipCallEvent]) -> None:
    while not seen or not isinstance(seen[-1], HungUp | Cancelled | AckTimeout):
        seen.append(await next_event(call))


async def uac_against(
    sip: SipEndpoint,
    tmp_path: Path,
    scenario: list[str],
    handle: Handler,
    transport: TransportName,
    calls_: int = 1,
) -> tuple[list[IncomingCall], list[list[SipCallEvent]]]:
    """Run a sipp caller against `sip`; every incoming call is handled by `handle` to its end."""
    calls: list[IncomingCall] = []
    events: list[list[SipCallEvent]] = []
    handlers: list[asyncio.Task[None]] = []

    async def serve() -> None:
        while True:
            call = await sip.incoming.get()
            calls.append(call)
            events.append([])
            handlers.append(asyncio.create_task(handle(call, events[-1])))

    host, port = sip.bound_address(transport)
    server = asyncio.create_task(serve())
    try:
        args = [*scenario, *sipp_args(transport, free_port(transport), calls=calls_), f"{host}:{port}"]
        result = await run_sipp(args, tmp_path)
        assert result.returncode == 0, result.output
        await asyncio.wait_for(asyncio.gather(*handlers), STEP)
    finally:
        server.cancel()
        for task in handlers:
            task.cancel()
        await asyncio.gather(server, *handlers, return_exceptions=True)
    return calls, events


@pytest.fixture(params=["udp", "tcp"])
async def sip(request: pytest.FixtureRequest) -> AsyncIterator[SipEndpoint]:
    endpoint_ = await endpoint(request.param)
    yield endpoint_
    await endpoint_.close()


def transport_of(sip: SipEndpoint) -> TransportName:
    return sip.config.listen[0].transport


async def ring_then_answer(call: IncomingCall, seen: list[SipCallEvent]) -> None:
    assert call.sdp.startswith(b"v=0")
    assert call.progress(180)
    assert call.answer(SDP)
    await until_over(call, seen)


async def test_sipp_calls_us_and_hangs_up(sip: SipEndpoint, tmp_path: Path) -> None:
    calls, events = await uac_against(
        sip, tmp_path, ["-sn", "uac", "-d", "200"], ring_then_answer, transport_of(sip)
    )
    assert len(calls) == 1
    assert [type(e) for e in events[0]] == [Confirmed, HungUp]
    assert sip.active_calls == 0


async def test_cancel_while_ringing_ends_the_invite_with_487(sip: SipEndpoint, tmp_path: Path) -> None:
    async def ring(call: IncomingCall, seen: list[SipCallEvent]) -> None:
        call.progress(180)
        await until_over(call, seen)

    scenario = ["-sf", str(SCENARIOS / "cancel.xml")]
    calls, events = await uac_against(sip, tmp_path, scenario, ring, transport_of(sip))
    assert [type(e) for e in events[0]] == [Cancelled]
    assert not calls[0].pending
    assert calls[0].answer(SDP) is False


async def test_a_cancel_racing_the_200_leaves_the_call_up_until_bye(tmp_path: Path) -> None:
    sip = await endpoint("udp")
    try:

        async def answer(call: IncomingCall, seen: list[SipCallEvent]) -> None:
            call.answer(SDP)
            await until_over(call, seen)

        scenario = ["-sf", str(SCENARIOS / "cancel_race.xml")]
        _, events = await uac_against(sip, tmp_path, scenario, answer, "udp")
        assert [type(e) for e in events[0]] == [Confirmed, HungUp]
    finally:
        await sip.close()


async def test_a_digest_challenge_is_answered_by_sipp(tmp_path: Path) -> None:
    sip = await endpoint("udp")
    digest = DigestServer("switchboard", algorithms=("MD5",))
    outcomes: list[str] = []
    try:

        async def authenticate(call: IncomingCall, seen: list[SipCallEvent]) -> None:
            result = digest.verify(call.invite, passwords({"trunk1": "s3cret"}, digest.realm), sip.now)
            if isinstance(result, Authenticated):
                outcomes.append(result.username)
                call.answer(SDP)
                await until_over(call, seen)
            else:
                outcomes.append("challenged")
                call.reject(401, headers=digest.challenge(sip.now))

        scenario = ["-sf", str(SCENARIOS / "auth.xml")]
        _, events = await uac_against(sip, tmp_path, scenario, authenticate, "udp")
        assert outcomes == ["challenged", "trunk1"]
        assert [type(e) for e in events[1]] == [Confirmed, HungUp]
    finally:
        await sip.close()


async def test_a_200_never_acked_ends_the_call_with_bye(tmp_path: Path) -> None:
    sip = await endpoint("udp", timers=TimerValues(t1=0.05, t2=0.4, t4=0.5))
    try:

        async def answer(call: IncomingCall, seen: list[SipCallEvent]) -> None:
            call.answer(SDP)
            await until_over(call, seen)

        scenario = ["-sf", str(SCENARIOS / "no_ack.xml")]
        _, events = await uac_against(sip, tmp_path, scenario, answer, "udp")
        assert [type(e) for e in events[0]] == [AckTimeout]
    finally:
        await sip.close()


async def test_a_pbx_registers_with_digest_and_is_reachable(tmp_path: Path) -> None:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    registrar = Registrar()
    digest = DigestServer("switchboard", algorithms=("MD5",))
    known = passwords({"trunk1": "s3cret"}, "switchboard")

    async def ha1_for(username: str, algorithm: str) -> str | None:
        return known(username, algorithm)

    registration = DigestRegistration(registrar, digest, ha1_for)
    async with SipEndpoint(config, registration=registration) as sip:
        host, port = sip.bound_address("udp")
        local = free_port("udp")
        scenario = ["-sf", str(SCENARIOS / "register.xml"), *sipp_args("udp", local), f"{host}:{port}"]
        result = await run_sipp(scenario, tmp_path)
        assert result.returncode == 0, result.output
        binding = registrar.contact("trunk1", sip.now)
        assert binding is not None
        uri = binding.contact.uri
        assert (uri.user, uri.host, uri.port, uri.transport) == ("pbx", "127.0.0.1", local, "udp")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_we_call_sipp_and_hang_up(transport: TransportName, tmp_path: Path) -> None:
    sip = await endpoint(transport)
    port = free_port(transport)
    try:
        async with sipp_server(["-sn", "uas", *sipp_args(transport, port)], tmp_path):
            await wait_listening(transport, port)
            peer = Peer(transport, "127.0.0.1", port)
            uri = SipURI("127.0.0.1", "bob", port)
            call = sip.invite(uri, peer, from_=Address(SipURI("127.0.0.1", "alice")), sdp=SDP)
            ringing = await next_event(call)
            assert isinstance(ringing, Progress) and ringing.response.status == 180
            answered = await next_event(call)
            assert isinstance(answered, Answered) and answered.sdp.startswith(b"v=0")
            bye = await call.bye()
            assert bye is not None and bye.status == 200
    finally:
        await sip.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_our_options_ping_is_answered(transport: TransportName, tmp_path: Path) -> None:
    sip = await endpoint(transport)
    port = free_port(transport)
    try:
        async with sipp_server(["-sn", "uas", "-aa", *sipp_args(transport, port)], tmp_path):
            await wait_listening(transport, port)
            result = await sip.options(SipURI("127.0.0.1", None, port), Peer(transport, "127.0.0.1", port))
            assert result.alive and result.status == 200
    finally:
        await sip.close()


async def test_an_options_ping_nobody_answers_is_not_alive() -> None:
    sip = await endpoint("tcp")
    try:
        port = free_port("tcp")
        result = await sip.options(SipURI("127.0.0.1", None, port), Peer("tcp", "127.0.0.1", port))
        assert not result.alive and result.status is None
    finally:
        await sip.close()


async def test_forty_calls_over_udp_losing_five_percent_all_complete_once(tmp_path: Path) -> None:
    """sipp drops 5 % of the messages it sends and of those it receives; the RFC 3261 retransmissions
    on both sides recover every loss: each call completes, none is seen twice, none is left up."""
    sip = await endpoint("udp")
    try:
        scenario = ["-sf", str(SCENARIOS / "lossy_uac.xml"), "-lost", "5", "-r", "20", "-l", "20"]
        calls, events = await uac_against(sip, tmp_path, scenario, ring_then_answer, "udp", calls_=40)
        assert len(calls) == 40
        assert len({call.call_id for call in calls}) == 40
        # a BYE may overtake an ACK sipp dropped: the call ends all the same
        assert all([type(e) for e in seen] in ([Confirmed, HungUp], [HungUp]) for seen in events), events
        assert sip.active_calls == 0
    finally:
        await sip.close()
