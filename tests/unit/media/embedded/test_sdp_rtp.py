"""SDP for the `rtp` profile and browsers: codecs in order, directions, SDES crypto, refused m-lines."""

from __future__ import annotations

import pytest

from switchboard.media.codecs import AudioFormat
from switchboard.media.embedded.sdes import offer_crypto, srtp_session
from switchboard.media.embedded.sdp import (
    CryptoAttribute,
    Direction,
    SdpError,
    build_rtp_description,
    parse_audio_description,
)
from switchboard.media.engine import Codec

KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
PHONE = "\r\n".join(
    [
        "v=0",
        "o=pbx 5 7 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 4000 RTP/SAVP 8 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendonly",
        "a=rtcp:4005",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4",
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}",
        f"a=crypto:3 F8_128_HMAC_SHA1_80 inline:{KEY}",
        "m=video 4002 RTP/AVP 96",
        "",
    ]
)


def test_phone_offer_static_types_direction_rtcp_port_and_usable_crypto() -> None:
    offer = parse_audio_description(PHONE, codecs=(Codec.PCMU, Codec.PCMA), webrtc=False)
    assert [f.codec for f in offer.formats] == [Codec.PCMA, Codec.PCMU]
    assert offer.format_for([Codec.PCMU, Codec.PCMA]) == AudioFormat(Codec.PCMU, 0)
    assert offer.telephone_event_pt == 101
    assert offer.direction is Direction.SENDONLY and offer.direction.answer() is Direction.RECVONLY
    assert offer.rtcp_port == 4005 and not offer.rtcp_mux
    assert [(c.tag, c.suite) for c in offer.crypto] == [(2, "AES_CM_128_HMAC_SHA1_32")]  # 1 has an MKI
    assert len(offer.media_lines) == 2


def test_answer_refuses_the_other_m_lines_in_place() -> None:
    offer = parse_audio_description(PHONE, codecs=(Codec.PCMU,), webrtc=False)
    answer = build_rtp_description(
        session_id=1,
        version=2,
        address="198.51.100.1",
        port=30000,
        audio=[AudioFormat(Codec.PCMU, 0)],
        telephone_event_pt=101,
        direction=Direction.RECVONLY,
        crypto=[offer_crypto()[1]],
        media_lines=offer.media_lines,
        index=offer.index,
    )
    assert answer.index("m=audio 30000 RTP/SAVP 0 101") < answer.index("m=video 0 RTP/AVP 96")
    for line in ("a=ptime:20", "a=recvonly", "a=rtcp:30001", "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"):
        assert f"{line}" in answer
    parsed = parse_audio_description(answer, what="answer", codecs=(Codec.PCMU,), webrtc=False)
    assert parsed.crypto[0].suite == "AES_CM_128_HMAC_SHA1_32" and parsed.port == 30000


def test_no_common_codec_or_foreign_proto_is_a_clear_error() -> None:
    with pytest.raises(SdpError, match="no audio m-line with Opus"):
        parse_audio_description(PHONE, codecs=(Codec.OPUS,), webrtc=False)
    with pytest.raises(SdpError, match="not RTP/AVP or RTP/SAVP"):
        parse_audio_description(
            PHONE.replace("RTP/SAVP", "UDP/TLS/RTP/SAVPF"), codecs=(Codec.PCMU,), webrtc=False
        )


def test_crypto_attribute_round_trip_and_keys_work() -> None:
    ours = offer_crypto()
    assert [c.suite for c in ours] == ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    assert CryptoAttribute.parse(ours[0].to_sdp()) == ours[0]
    assert CryptoAttribute.parse("1 AES_CM_128_HMAC_SHA1_80 inline:short") is None
    packet = bytes([0x80, 0]) + bytes(10) + b"\xff" * 160
    protected = srtp_session(ours[0], outbound=True).protect(packet)
    assert len(protected) == len(packet) + 10
    assert srtp_session(ours[0], outbound=False).unprotect(protected) == packet


def test_an_ipv6_address_is_described_as_ip6() -> None:
    sdp = build_rtp_description(
        session_id=1,
        version=1,
        address="2001:db8::7",
        port=30000,
        audio=[AudioFormat(Codec.PCMU, 0)],
        telephone_event_pt=None,
    )
    assert "o=- 1 1 IN IP6 2001:db8::7\r\n" in sdp and "c=IN IP6 2001:db8::7\r\n" in sdp
