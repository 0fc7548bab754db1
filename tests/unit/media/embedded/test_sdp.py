"""SDP parse/build for WhatsApp-shaped audio."""

from __future__ import annotations

import pytest

from switchboard.media.embedded.sdp import (
    DtlsSetup,
    Fingerprint,
    SdpError,
    build_description,
    parse_audio_description,
)

META_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1234 2 IN IP4 157.240.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        "m=audio 40012 UDP/TLS/RTP/SAVPF 111 126",
        "c=IN IP4 157.240.0.1",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdefghijkl",
        "a=fingerprint:sha-256 ab:cd:EF",
        "a=setup:actpass",
        "a=mid:audio",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ptime:20",
        "a=rtpmap:126 telephone-event/8000",
        "a=ssrc:42 cname:meta",
        "a=candidate:1 1 udp 2122260223 157.240.0.1 40012 typ host generation 0",
        "a=candidate:2 1 udp 2122262783 2a03:2880::1 40012 typ host generation 0",
        "",
    ]
)


def test_parse_meta_offer() -> None:
    offer = parse_audio_description(META_OFFER)
    assert offer.ice_lite
    assert (offer.ice_ufrag, offer.ice_pwd) == ("abcd", "0123456789abcdefghijkl")
    assert offer.fingerprints == (Fingerprint("sha-256", "AB:CD:EF"),)
    assert offer.setup is DtlsSetup.ACTPASS
    assert (offer.opus_pt, offer.telephone_event_pt) == (111, 126)
    assert offer.opus_fmtp == "minptime=10;useinbandfec=1"
    assert offer.ptime == 20 and offer.ssrc == 42 and offer.mid == "audio"
    assert offer.rtcp_mux and offer.port == 40012
    assert offer.connection_address == "157.240.0.1"
    assert len(offer.candidates) == 2 and offer.candidates[0].startswith("1 1 udp")


def test_payload_types_come_from_the_offer() -> None:
    offer = parse_audio_description(
        META_OFFER.replace("111", "109").replace("126", "101").replace("\r\n", "\n")
    )
    assert (offer.opus_pt, offer.telephone_event_pt) == (109, 101)


def test_session_level_ice_and_fingerprint() -> None:
    text = META_OFFER.replace("a=ice-lite\r\n", "a=ice-lite\r\na=ice-ufrag:sess\r\n").replace(
        "a=ice-ufrag:abcd\r\n", ""
    )
    assert parse_audio_description(text).ice_ufrag == "sess"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an SDP document"),
        (META_OFFER.replace("a=rtpmap:111 opus/48000/2\r\n", ""), "no audio m-line with Opus"),
        (META_OFFER.replace("m=audio", "m=video"), "no audio m-line with Opus"),
        (META_OFFER.replace("a=ice-pwd:0123456789abcdefghijkl\r\n", ""), "no ICE credentials"),
        (META_OFFER.replace("a=fingerprint:sha-256 ab:cd:EF\r\n", ""), "no DTLS fingerprint"),
        (META_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), "not UDP/TLS/RTP/SAVPF"),
    ],
)
def test_bad_sdp_has_a_clear_reason(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_audio_description(text)


def test_build_answer_round_trips() -> None:
    text = build_description(
        session_id=7,
        address="203.0.113.5",
        port=50000,
        ice_ufrag="uf",
        ice_pwd="p" * 22,
        fingerprint=Fingerprint("sha-256", "AA:BB"),
        setup=DtlsSetup.ACTIVE,
        opus_pt=111,
        telephone_event_pt=126,
        candidates=["f 1 udp 2130706431 203.0.113.5 50000 typ host"],
        ssrc=99,
        cname="c",
        mid="audio",
    )
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert "m=audio 50000 UDP/TLS/RTP/SAVPF 111 126\r\n" in text
    assert "a=setup:active\r\n" in text and "a=rtcp-mux\r\n" in text
    assert "a=end-of-candidates\r\n" in text
    answer = parse_audio_description(text, what="answer")
    assert answer.setup is DtlsSetup.ACTIVE
    assert answer.fingerprints == (Fingerprint("sha-256", "AA:BB"),)
    assert (answer.opus_pt, answer.telephone_event_pt, answer.ssrc, answer.mid) == (
        111,
        126,
        99,
        "audio",
    )
    assert not answer.ice_lite
