"""Two of our endpoints against each other, and raw datagrams against one, on loopback."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from switchboard.channels.sip.digest import Authenticated, Credentials, DigestServer, passwords
from switchboard.channels.sip.endpoint import EndpointConfig, IncomingCall, SipEndpoint
from switchboard.channels.sip.events import (
    Answered,
    Cancelled,
    Confirmed,
    DialogRequest,
    Failed,
    HungUp,
    Progress,
    SipCallEvent,
)
from switchboard.channels.sip.message import Address, Message, Request, Response, SipURI, parse_message
from switchboard.channels.sip.transport import ListenSpec, Peer

pytestmark = pytest.mark.timeout(60)

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
HOLD = SDP + b"a=sendonly\r\n"
STEP = 20.0
"""Bound on waiting for one event; a test that hits it failed, it does not measure time."""


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipEndpoint, SipEndpoint]]:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    async with SipEndpoint(config) as caller, SipEndpoint(config) as callee:
        yield caller, callee


async def event(call: object) -> SipCallEvent:
    return await asyncio.wait_for(call.events.get(), STEP)  # type: ignore[attr-defined]


async def incoming(sip: SipEndpoint) -> IncomingCall:
    return await asyncio.wait_for(sip.incoming.get(), STEP)


def dial(caller: SipEndpoint, callee: SipEndpoint, **kwargs: object):  # type: ignore[no-untyped-def]
    host, port = callee.bound_address("udp")
    uri = SipURI(host, "bob", port)
    return caller.invite(
        uri, Peer("udp", host, port), from_=Address(SipURI(host, "alice")), sdp=SDP, **kwargs
    )  # type: ignore[arg-type]


async def test_a_call_rings_answers_holds_and_hangs_up(pair: tuple[SipEndpoint, SipEndpoint]) -> None:
    caller, callee = pair
    outgoing = dial(caller, callee)
    call = await incoming(callee)
    call.on_offer = lambda request: SDP if b"a=sendonly" in request.body else None
    assert call.progress(183, SDP)
    early = await event(outgoing)
    assert isinstance(early, Progress) and early.sdp == SDP
    assert call.answer(SDP)
    assert isinstance(await event(outgoing), Answered)
    assert isinstance(await event(call), Confirmed)
    held = await outgoing.request("INVITE", body=HOLD)
    assert held is not None and held.status == 200 and held.body == SDP
    assert isinstance(await event(call), Confirmed)
    refused = await outgoing.request("UPDATE", body=SDP)
    assert refused is not None and refused.status == 488
    info = await outgoing.request(
        "INFO", body=b"Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    assert info is not None and info.status == 200
    dtmf = await event(call)
    assert isinstance(dtmf, DialogRequest) and dtmf.request.body.startswith(b"Signal=5")
    bye = await call.bye()
    assert bye is not None and bye.status == 200
    assert isinstance(await event(outgoing), HungUp)
    assert caller.active_calls == callee.active_calls == 0


async def test_a_reject_carries_its_reason(pair: tuple[SipEndpoint, SipEndpoint]) -> None:
    caller, callee = pair
    outgoing = dial(caller, callee)
    call = await incoming(callee)
    call.reject(403, headers=[("Reason", 'SIP;cause=403;text="NO_PERMISSION"')])
    failed = await event(outgoing)
    assert isinstance(failed, Failed) and failed.status == 403
    assert failed.response is not None and "NO_PERMISSION" in (failed.response.headers.get("Reason") or "")


async def test_our_cancel_ends_a_ringing_call_with_487(pair: tuple[SipEndpoint, SipEndpoint]) -> None:
    caller, callee = pair
    outgoing = dial(caller, callee)
    call = await incoming(callee)
    call.progress(180)
    assert isinstance(await event(outgoing), Progress)
    outgoing.cancel()
    assert isinstance(await event(call), Cancelled)
    failed = await event(outgoing)
    assert isinstance(failed, Failed) and failed.status == 487


async def test_when_our_cancel_loses_to_the_200_we_ack_and_bye(pair: tuple[SipEndpoint, SipEndpoint]) -> None:
    caller, callee = pair
    outgoing = dial(caller, callee)
    call = await incoming(callee)
    call.progress(180)
    assert isinstance(await event(outgoing), Progress)
    call.answer(SDP)
    outgoing.cancel()
    events = [await event(call), await event(call)]
    assert [type(e) for e in events] == [Confirmed, HungUp]
    failed = await event(outgoing)
    assert isinstance(failed, Failed) and failed.status == 487


async def test_our_invite_answers_a_digest_challenge() -> None:
    digest = DigestServer("switchboard")
    config = EndpointConfig(listen=(ListenSpec("tcp", "127.0.0.1", 0),))
    async with SipEndpoint(config) as caller, SipEndpoint(config) as callee:
        host, port = callee.bound_address("tcp")
        outgoing = caller.invite(
            SipURI(host, "bob", port, params=(("transport", "tcp"),)),
            Peer("tcp", host, port),
            from_=Address(SipURI(host, "alice")),
            sdp=SDP,
            credentials=Credentials("trunk1", "s3cret"),
        )
        first = await incoming(callee)
        first.reject(401, headers=digest.challenge(callee.now))
        second = await incoming(callee)
        assert second.invite.cseq.number == first.invite.cseq.number + 1
        known = passwords({"trunk1": "s3cret"}, digest.realm)
        assert digest.verify(second.invite, known, callee.now) == Authenticated("trunk1")
        second.answer(SDP)
        assert isinstance(await event(outgoing), Answered)
        assert isinstance(await event(second), Confirmed)
        assert (await outgoing.bye()) is not None


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[Message] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.put_nowait(parse_message(data))

    async def next(self) -> Response:
        message = await asyncio.wait_for(self.received.get(), STEP)
        assert isinstance(message, Response)
        return message


async def test_retransmitted_invite_and_bye_make_one_call_and_one_hang_up() -> None:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    loop = asyncio.get_running_loop()
    async with SipEndpoint(config) as callee:
        transport, peer = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0), remote_addr=callee.bound_address("udp")
        )
        try:
            port = transport.get_extra_info("sockname")[1]
            invite = raw_request("INVITE", port, branch="z9hG4bKinv", cseq=1, body=SDP)
            transport.sendto(invite)
            assert (await peer.next()).status == 100
            call = await incoming(callee)
            transport.sendto(invite)
            assert (await peer.next()).status == 100
            call.answer(SDP)
            ok = await peer.next()
            assert ok.status == 200
            tag = ok.to.tag or ""
            transport.sendto(raw_request("ACK", port, branch="z9hG4bKack", cseq=1, to_tag=tag))
            assert isinstance(await event(call), Confirmed)
            transport.sendto(invite)
            bye = raw_request("BYE", port, branch="z9hG4bKbye", cseq=2, to_tag=tag)
            transport.sendto(bye)
            transport.sendto(bye)
            assert [(await peer.next()).status, (await peer.next()).status] == [200, 200]
            assert isinstance(await event(call), HungUp)
            late = raw_request("BYE", port, branch="z9hG4bKbye2", cseq=3, to_tag=tag)
            transport.sendto(late)
            assert (await peer.next()).status == 481
            assert callee.incoming.empty() and call.events.empty()
        finally:
            transport.close()


async def test_garbage_gets_no_answer_and_breaks_nothing() -> None:
    config = EndpointConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))
    loop = asyncio.get_running_loop()
    async with SipEndpoint(config) as callee:
        transport, peer = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0), remote_addr=callee.bound_address("udp")
        )
        try:
            port = transport.get_extra_info("sockname")[1]
            for junk in (
                b"\x00" * 100,
                b"INVITE sip:x SIP/2.0\r\n\r\n",
                b"SIP/2.0 200 OK\r\n" + b"x" * 60000,
            ):
                transport.sendto(junk)
            transport.sendto(raw_request("OPTIONS", port, branch="z9hG4bKopt", cseq=1))
            answer = await peer.next()
            assert answer.status == 200 and "INVITE" in (answer.headers.get("Allow") or "")
        finally:
            transport.close()


def raw_request(
    method: str, port: int, *, branch: str, cseq: int, to_tag: str = "", body: bytes = b""
) -> bytes:
    request = Request(method=method, uri=SipURI("127.0.0.1", "bob"))
    request.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport")
    request.headers.add("From", f"<sip:alice@127.0.0.1:{port}>;tag=raw")
    request.headers.add("To", "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""))
    request.headers.add("Call-ID", "raw-call")
    request.headers.add("CSeq", f"{cseq} {method}")
    request.headers.add("Contact", f"<sip:alice@127.0.0.1:{port}>")
    if body:
        request.headers.add("Content-Type", "application/sdp")
        request.body = body
    return request.to_bytes()


LOOPBACK = ipaddress.ip_address("127.0.0.1")


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_a_call_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    config = EndpointConfig(
        listen=(ListenSpec("tls", "127.0.0.1", 0),), tls_context=server, client_tls_context=client
    )
    async with SipEndpoint(config) as caller, SipEndpoint(config) as callee:
        host, port = callee.bound_address("tls")
        uri = SipURI(host, "bob", port, params=(("transport", "tls"),))
        outgoing = caller.invite(uri, Peer("tls", host, port), from_=Address(SipURI(host, "alice")), sdp=SDP)
        call = await incoming(callee)
        assert call.peer.transport == "tls"
        call.answer(SDP)
        assert isinstance(await event(outgoing), Answered)
        assert isinstance(await event(call), Confirmed)
        bye = await outgoing.bye()
        assert bye is not None and bye.status == 200
        assert isinstance(await event(call), HungUp)
