"""SIP message parsing and building (RFC 3261 §7, §20; torture cases after RFC 4475)."""

from __future__ import annotations

import pytest

from switchboard.channels.sip.message import (
    MAX_MESSAGE_SIZE,
    Address,
    CSeq,
    Request,
    Response,
    SipParseError,
    SipURI,
    StreamParser,
    Via,
    make_response,
    parse_message,
    split_list,
)

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;rport, SIP/2.0/TCP proxy.example;branch=z9hG4bKdef\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bKghi;received=192.0.2.1\r\n"
    b'f: "Alice, A." <sip:alice@10.0.0.1>;tag=1928301774\r\n'
    b"t: <sip:bob@127.0.0.1>\r\n"
    b"i: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"m: <sip:alice@10.0.0.1:5070;transport=udp>\r\n"
    b"Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
    b"X-Custom: folded\r\n  value\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\nextra bytes beyond Content-Length"
)


def test_a_request_with_compact_and_multi_valued_headers_parses() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == SipURI("127.0.0.1", "bob", 5060)
    assert [v.branch for v in message.vias] == ["z9hG4bKabc", "z9hG4bKdef", "z9hG4bKghi"]
    assert message.vias[2].host == "[2001:db8::1]" and message.vias[2].received == "192.0.2.1"
    assert message.top_via.wants_rport and message.top_via.rport is None
    assert message.from_.display_name == "Alice, A." and message.from_.tag == "1928301774"
    assert message.to.tag is None
    assert message.call_id == "a84b4c76e66710"
    assert message.cseq == CSeq(314159, "INVITE")
    assert message.contacts[0].uri.param("transport") == "udp"
    assert [str(a.uri) for a in message.record_routes] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert message.headers.get("x-custom") == "folded value"
    assert message.content_type == "application/sdp"
    assert message.body == b"v=0\r"


def test_a_built_message_parses_back_to_the_same_fields() -> None:
    original = parse_message(INVITE)
    assert isinstance(original, Request)
    again = parse_message(original.to_bytes())
    assert isinstance(again, Request)
    assert list(again.headers) == list(original.headers)
    assert again.body == original.body
    assert b"\r\nContent-Length: 4\r\n" in original.to_bytes()


def test_a_response_copies_the_request_fields_and_adds_a_to_tag() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    response = make_response(request, 180, to_tag="xyz", headers=[("Contact", "<sip:us@127.0.0.1>")])
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    assert (parsed.status, parsed.reason) == (180, "Ringing")
    assert parsed.headers.lines("Via") == request.headers.lines("Via")
    assert parsed.to.tag == "xyz" and parsed.from_.tag == "1928301774"
    assert make_response(request, 100, to_tag="xyz").to.tag is None


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com",
        "sip:alice:secret@example.com:5061;transport=tcp;lr",
        "sips:[2001:db8::10]:5061",
        "sip:+4930123@10.0.0.1;user=phone?subject=hi",
    ],
)
def test_uris_round_trip(text: str) -> None:
    uri = SipURI.parse(text)
    assert SipURI.parse(str(uri)) == uri


def test_addresses_keep_display_names_and_tags() -> None:
    address = Address.parse('"Bob \\"B\\"" <sip:bob@h;transport=tcp>;tag=abc;x')
    assert address.display_name == 'Bob "B"'
    assert address.uri.param("transport") == "tcp"
    assert address.tag == "abc"
    assert Address.parse(str(address)) == address
    bare = Address.parse("sip:carol@h;tag=t1")
    assert bare.tag == "t1" and bare.uri.params == ()
    assert bare.with_tag("t2").tag == "t2"


def test_via_received_and_rport() -> None:
    via = Via.parse("SIP/2.0/udp 10.0.0.1;branch=z9hG4bK1;rport")
    stamped = via.with_param("received", "192.0.2.9").with_param("rport", "4000")
    assert stamped.received == "192.0.2.9" and stamped.rport == 4000
    assert str(stamped) == "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=192.0.2.9;rport=4000"


def test_commas_inside_quotes_and_brackets_do_not_split() -> None:
    assert split_list('"a, b" <sip:x@y>, <sip:z@w;p=1,2>') == ['"a, b" <sip:x@y>', "<sip:z@w;p=1,2>"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02",
        b"INVITE sip:bob@h SIP/2.0\r\n",
        b"INVITE sip:bob@h SIP/3.0\r\n\r\n",
        b"INVITE bob SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
        INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"),
        INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 99999999999999999999 INVITE"),
        INVITE.replace(b"i: a84b4c76e66710\r\n", b""),
        INVITE.replace(b"l: 4", b"l: 400"),
        INVITE.replace(b"l: 4", b"l: -1"),
        INVITE.replace(b"f: ", b"f: <sip:unterminated"),
        INVITE.replace(b"X-Custom", b"Bad Header"),
        INVITE.replace(b"v: SIP/2.0/UDP 10.0.0.1:5070", b"v: SIP/2.0/UDP 10.0.0.1:99999"),
        INVITE.replace(b"alice", "\u00e9".encode("latin-1")),
        b"SIP/2.0 700 Nope\r\n\r\n",
        b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n",
        b"INVITE sip:b@h SIP/2.0\r\n" + b"X: y\r\n" * 300 + b"\r\n",
        b"X" * (MAX_MESSAGE_SIZE + 1),
    ],
)
def test_malformed_or_oversized_input_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(data)


def test_a_stream_is_framed_by_content_length_across_reads() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    wire = b"\r\n\r\n" + request.to_bytes() * 2
    parser = StreamParser()
    messages = []
    for i in range(0, len(wire), 7):
        messages += parser.feed(wire[i : i + 7])
    assert len(messages) == 2
    assert all(m.body == b"v=0\r" for m in messages)


def test_a_stream_without_content_length_or_with_endless_headers_is_refused() -> None:
    with pytest.raises(SipParseError):
        StreamParser().feed(b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n")
    parser = StreamParser()
    with pytest.raises(SipParseError):
        for _ in range(100):
            parser.feed(b"X-Junk: " + b"a" * 1000 + b"\r\n")


def test_a_stream_parser_refuses_a_message_larger_than_it_may_buffer() -> None:
    parser = StreamParser(max_buffered=1024)
    head = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 2000\r\n\r\n"
    with pytest.raises(SipParseError, match="exceeds"):
        parser.feed(head)
    small = StreamParser(max_buffered=1024)
    assert small.feed(b"OPTIONS sip:a SIP/2.0\r\n") == [] and small.buffered > 0
    with pytest.raises(SipParseError, match="headers too large"):
        small.feed(b"X-Pad: " + b"a" * 1100)
