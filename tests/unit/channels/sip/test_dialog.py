"""Dialogs (RFC 3261 §12, §13.3.1.4)."""

from __future__ import annotations

import pytest

from switchboard.channels.sip.dialog import AnswerRetransmission, Dialog, DialogError, dialog_id_of
from switchboard.channels.sip.message import Address, Request, SipURI, make_response
from switchboard.channels.sip.transaction import TimedOut, Timer, TimerValues, Transmit


def invite() -> Request:
    message = Request(method="INVITE", uri=SipURI("pbx.example", "bob"))
    message.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1")
    message.headers.add("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>")
    message.headers.add("From", "<sip:alice@127.0.0.1>;tag=a1")
    message.headers.add("To", "<sip:bob@pbx.example>")
    message.headers.add("Call-ID", "call-1")
    message.headers.add("CSeq", "7 INVITE")
    message.headers.add("Contact", "<sip:alice@127.0.0.1:5070>")
    return message


def test_the_uac_dialog_reverses_the_route_set_and_targets_the_answer_contact() -> None:
    request = invite()
    ok = make_response(request, 200, to_tag="b1", headers=[("Contact", "<sip:bob@10.0.0.9:5080>")])
    dialog = Dialog.as_uac(request, ok)
    assert dialog.id == ("call-1", "a1", "b1")
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    bye = dialog.create_request("BYE")
    assert bye.uri == SipURI("10.0.0.9", "bob", 5080)
    assert bye.headers.lines("Route") == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert bye.cseq.number == 8 and bye.from_.tag == "a1" and bye.to.tag == "b1"
    ack = dialog.create_ack(7)
    assert ack.cseq.number == 7 and ack.cseq.method == "ACK"


def test_the_uas_dialog_keeps_the_route_set_and_checks_cseq() -> None:
    request = invite()
    contact = Address(SipURI("127.0.0.1", None, 5060))
    dialog = Dialog.as_uas(request, "b1", contact)
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert dialog.id == dialog_id_of(_in_dialog(dialog, "BYE", 8))
    reinvite = _in_dialog(dialog, "INVITE", 8, contact="<sip:alice@127.0.0.1:6000>")
    dialog.receive_request(reinvite)
    assert dialog.remote_target == SipURI("127.0.0.1", "alice", 6000)
    with pytest.raises(DialogError) as caught:
        dialog.receive_request(_in_dialog(dialog, "BYE", 8))
    assert caught.value.status == 500
    update = dialog.create_request("UPDATE", body=b"v=0\r\n")
    assert update.headers.get("Contact") == str(contact)
    assert update.headers.get("Content-Type") == "application/sdp"


def test_a_strict_router_takes_the_request_uri() -> None:
    request = invite()
    request.headers.set("Record-Route", "<sip:strict.example>")
    dialog = Dialog.as_uas(request, "b1", Address(SipURI("127.0.0.1")))
    bye = dialog.create_request("BYE")
    assert bye.uri == SipURI("strict.example")
    assert bye.headers.lines("Route") == ["<sip:alice@127.0.0.1:5070>"]


def test_the_2xx_is_retransmitted_until_acked() -> None:
    ok = make_response(invite(), 200, to_tag="b1")
    retransmission = AnswerRetransmission(ok, 0.0, reliable=False, timers=TimerValues())
    times = []
    while (deadline := retransmission.next_deadline()) is not None and deadline < 3.0:
        assert retransmission.timeout(deadline) == [Transmit(ok)]
        times.append(deadline)
    assert times == [0.5, 1.5]
    retransmission.ack_received()
    assert retransmission.next_deadline() is None and retransmission.done


def test_an_unacked_2xx_ends_after_64_t1_even_over_tcp() -> None:
    ok = make_response(invite(), 200, to_tag="b1")
    retransmission = AnswerRetransmission(ok, 0.0, reliable=True, timers=TimerValues())
    assert retransmission.next_deadline() == 32.0
    assert retransmission.timeout(32.0) == [TimedOut(Timer.H)]
    assert retransmission.done


def _in_dialog(dialog: Dialog, method: str, cseq: int, contact: str | None = None) -> Request:
    request = Request(method=method, uri=SipURI("127.0.0.1"))
    request.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2")
    request.headers.add("From", str(dialog.remote_uri))
    request.headers.add("To", str(dialog.local_uri))
    request.headers.add("Call-ID", dialog.call_id)
    request.headers.add("CSeq", f"{cseq} {method}")
    if contact:
        request.headers.add("Contact", contact)
    return request
