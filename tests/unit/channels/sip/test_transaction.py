"""RFC 3261 §17 transaction machines driven by a fake clock: timers are data, so the 32 s Timer B runs in
microseconds."""

from __future__ import annotations

from switchboard.channels.sip.message import Request, Response, SipURI, make_response, parse_message
from switchboard.channels.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    Terminated,
    TimedOut,
    Timer,
    TimerValues,
    TransactionState,
    Transmit,
    client_key,
    server_key,
)

T = TimerValues()


def request(method: str = "INVITE", branch: str = "z9hG4bK1") -> Request:
    message = Request(method=method, uri=SipURI("127.0.0.1", "bob", 5060))
    message.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch}")
    message.headers.add("From", "<sip:alice@127.0.0.1>;tag=a")
    message.headers.add("To", "<sip:bob@127.0.0.1>")
    message.headers.add("Call-ID", "c1")
    message.headers.add("CSeq", f"1 {method}")
    message.headers.add("Contact", "<sip:alice@127.0.0.1:5070>")
    return message


def response(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="b")


def fire_until(txn: object, until: float) -> list[tuple[float, object]]:
    """Run the machine's timers up to `until`; return (time, action) pairs."""
    seen: list[tuple[float, object]] = []
    while (deadline := txn.next_deadline()) is not None and deadline <= until:  # type: ignore[attr-defined]
        seen += [(deadline, a) for a in txn.timeout(deadline)]  # type: ignore[attr-defined]
    return seen


def test_client_invite_retransmits_at_timer_a_and_times_out_at_timer_b() -> None:
    invite = request()
    txn = ClientInviteTransaction(invite, reliable=False)
    assert txn.start(0.0) == [Transmit(invite)]
    seen = fire_until(txn, 100.0)
    sends = [t for t, a in seen if isinstance(a, Transmit)]
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert seen[-2:] == [(32.0, TimedOut(Timer.B)), (32.0, Terminated())]


def test_client_invite_over_tcp_never_retransmits() -> None:
    txn = ClientInviteTransaction(request(), reliable=True)
    txn.start(0.0)
    seen = fire_until(txn, 100.0)
    assert [a for _, a in seen] == [TimedOut(Timer.B), Terminated()]


def test_client_invite_acks_a_failure_and_absorbs_its_retransmission() -> None:
    invite = request()
    txn = ClientInviteTransaction(invite, reliable=False)
    txn.start(0.0)
    ringing = response(invite, 180)
    assert txn.receive(ringing, 0.1) == [Deliver(ringing)]
    assert txn.state is TransactionState.PROCEEDING
    busy = response(invite, 486)
    actions = txn.receive(busy, 0.2)
    ack = actions[0]
    assert isinstance(ack, Transmit) and isinstance(ack.message, Request)
    assert ack.message.method == "ACK" and ack.message.cseq.number == 1
    assert ack.message.top_via.branch == "z9hG4bK1" and ack.message.to.tag == "b"
    assert actions[1] == Deliver(busy)
    assert txn.receive(busy, 1.0) == [Transmit(ack.message)]
    assert fire_until(txn, 100.0) == [(32.2, Terminated())]


def test_client_invite_stays_accepted_for_2xx_retransmissions() -> None:
    invite = request()
    txn = ClientInviteTransaction(invite, reliable=False)
    txn.start(0.0)
    ok = response(invite, 200)
    assert txn.receive(ok, 0.1) == [Deliver(ok)]
    assert txn.state is TransactionState.ACCEPTED
    assert txn.receive(ok, 0.6) == [Deliver(ok)]
    assert fire_until(txn, 100.0) == [(32.1, Terminated())]


def test_client_non_invite_caps_timer_e_at_t2_and_times_out_at_timer_f() -> None:
    bye = request("BYE")
    txn = ClientNonInviteTransaction(bye, reliable=False)
    txn.start(0.0)
    seen = fire_until(txn, 100.0)
    sends = [t for t, a in seen if isinstance(a, Transmit)]
    assert sends[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert seen[-2:] == [(32.0, TimedOut(Timer.F)), (32.0, Terminated())]


def test_client_non_invite_waits_timer_k_after_its_final_response() -> None:
    bye = request("BYE")
    txn = ClientNonInviteTransaction(bye, reliable=False)
    txn.start(0.0)
    ok = response(bye, 200)
    assert txn.receive(ok, 0.2) == [Deliver(ok)]
    assert txn.receive(ok, 0.3) == []
    assert fire_until(txn, 100.0) == [(5.2, Terminated())]


def test_server_invite_absorbs_retransmitted_invites() -> None:
    invite = request()
    txn = ServerInviteTransaction(invite, reliable=False)
    assert txn.start(0.0) == [Deliver(invite)]
    assert txn.receive(invite, 0.1) == []
    ringing = response(invite, 180)
    assert txn.respond(ringing, 0.2) == [Transmit(ringing)]
    assert txn.receive(invite, 0.5) == [Transmit(ringing)]
    ok = response(invite, 200)
    assert txn.respond(ok, 1.0) == [Transmit(ok)]
    assert txn.receive(invite, 1.5) == []
    assert fire_until(txn, 100.0) == [(33.0, Terminated())]


def test_server_invite_retransmits_a_failure_until_acked() -> None:
    invite = request()
    txn = ServerInviteTransaction(invite, reliable=False)
    txn.start(0.0)
    busy = response(invite, 486)
    txn.respond(busy, 0.0)
    seen = fire_until(txn, 2.0)
    assert [t for t, a in seen if isinstance(a, Transmit)] == [0.5, 1.5]
    ack = parse_message(build_ack(invite).to_bytes())
    assert isinstance(ack, Request)
    assert server_key(ack) == server_key(invite)
    assert txn.receive(ack, 2.0) == []
    assert txn.state is TransactionState.CONFIRMED
    assert fire_until(txn, 100.0) == [(7.0, Terminated())]


def test_server_invite_gives_up_at_timer_h_without_an_ack() -> None:
    invite = request()
    txn = ServerInviteTransaction(invite, reliable=False)
    txn.start(0.0)
    txn.respond(response(invite, 603), 0.0)
    seen = fire_until(txn, 100.0)
    assert seen[-2:] == [(32.0, TimedOut(Timer.H)), (32.0, Terminated())]


def test_server_non_invite_answers_a_retransmitted_bye_with_the_same_response() -> None:
    bye = request("BYE")
    txn = ServerNonInviteTransaction(bye, reliable=False)
    assert txn.start(0.0) == [Deliver(bye)]
    assert txn.receive(bye, 0.1) == []
    ok = response(bye, 200)
    assert txn.respond(ok, 0.2) == [Transmit(ok)]
    assert txn.receive(bye, 0.7) == [Transmit(ok)]
    assert fire_until(txn, 100.0) == [(32.2, Terminated())]


def test_keys_match_requests_and_responses_to_their_transactions() -> None:
    invite = request()
    assert client_key(response(invite, 180)) == client_key(invite) == ("z9hG4bK1", "INVITE")
    cancel = request("CANCEL")
    assert server_key(cancel)[:2] == server_key(invite)[:2] and server_key(cancel) != server_key(invite)


def build_ack(invite: Request) -> Request:
    ack = Request(method="ACK", uri=invite.uri)
    ack.headers.add("Via", invite.headers.get_all("Via")[0])
    for name in ("From", "To", "Call-ID"):
        ack.headers.add(name, invite.headers.get(name) or "")
    ack.headers.add("CSeq", "1 ACK")
    return ack
