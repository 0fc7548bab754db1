"""TCP connection hygiene of a SIP endpoint: idle connections closed, inbound connections capped, slow or
oversized messages cut off, connections a call uses kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchboard.channels.sip.endpoint import EndpointConfig, SipEndpoint
from switchboard.channels.sip.message import Address, SipURI
from switchboard.channels.sip.transport import ListenSpec, Peer, StreamLimits

pytestmark = pytest.mark.timeout(60)

STEP = 20.0
"""Bound on waiting for one event; a test that hits it failed, it does not measure time."""
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-opt-1\r\n"
    b"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
    b"Call-ID: opt-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


async def tcp_endpoint(limits: StreamLimits) -> SipEndpoint:
    sip = SipEndpoint(EndpointConfig(listen=(ListenSpec("tcp", "127.0.0.1", 0),), stream_limits=limits))
    await sip.start()
    return sip


@pytest.fixture
async def quick() -> AsyncIterator[SipEndpoint]:
    sip = await tcp_endpoint(StreamLimits(idle_s=0.3, message_s=0.5, max_inbound=2, max_buffered=4096))
    yield sip
    await sip.close()


async def connect(sip: SipEndpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = sip.bound_address("tcp")
    return await asyncio.open_connection(host, port)


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the endpoint sends until it closes the connection."""
    received = b""
    async with asyncio.timeout(STEP):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def test_an_idle_connection_is_closed_after_it_answered(quick: SipEndpoint) -> None:
    reader, writer = await connect(quick)
    writer.write(OPTIONS)
    assert (await until_closed(reader)).startswith(b"SIP/2.0 200")
    writer.close()


async def test_a_slow_loris_client_is_cut_off_though_it_keeps_sending(quick: SipEndpoint) -> None:
    reader, writer = await connect(quick)
    closed = asyncio.create_task(until_closed(reader))
    for byte in OPTIONS:
        if closed.done():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.05)
    assert await closed == b"", "the message was never complete, so it was never answered"
    writer.close()


async def test_a_message_larger_than_the_buffer_allows_closes_the_connection(quick: SipEndpoint) -> None:
    reader, writer = await connect(quick)
    writer.write(OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 60000"))
    assert await until_closed(reader) == b""
    writer.close()


async def test_inbound_connections_beyond_the_cap_are_closed_at_once() -> None:
    sip = await tcp_endpoint(StreamLimits(idle_s=60, max_inbound=2))
    try:
        kept = [await connect(sip) for _ in range(2)]
        reader, writer = await connect(sip)
        assert await until_closed(reader) == b""
        writer.close()
        kept[0][1].write(OPTIONS)
        assert (await asyncio.wait_for(kept[0][0].readuntil(b"\r\n\r\n"), STEP)).startswith(b"SIP/2.0 200")
        for _, kept_writer in kept:
            kept_writer.close()
    finally:
        await sip.close()


async def test_a_connection_a_call_uses_is_kept_past_the_idle_time() -> None:
    limits = StreamLimits(idle_s=0.2, message_s=5)
    callee = await tcp_endpoint(limits)
    caller = await tcp_endpoint(limits)
    try:
        host, port = callee.bound_address("tcp")
        peer = Peer("tcp", host, port)
        outgoing = caller.invite(SipURI(host, "bob", port, params=(("transport", "tcp"),)), peer,
                                 from_=Address(SipURI(host, "alice")), sdp=SDP)  # fmt: skip
        call = await asyncio.wait_for(callee.incoming.get(), STEP)
        call.answer(SDP)
        await asyncio.wait_for(outgoing.events.get(), STEP)
        await asyncio.sleep(limits.idle_s * 3)  # idle three times over: the call still needs the connection
        # The callee can reach the caller only over the caller's connection (nothing listens at its port).
        info = call.request("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay")
        reply = await asyncio.wait_for(info, STEP)
        assert reply is not None and reply.status == 200
        await outgoing.bye()
    finally:
        await caller.close()
        await callee.close()
