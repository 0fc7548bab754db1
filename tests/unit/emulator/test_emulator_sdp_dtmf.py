from __future__ import annotations

import struct

import numpy as np

from switchboard.emulator import dominant_frequency, telephone_event_packets, tone
from switchboard.emulator._sdp import browser_offer, meta_answer, meta_offer

AIORTC_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 40000 UDP/TLS/RTP/SAVPF 96 0 8\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=mid:0\r\n"
    "a=rtcp-mux\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=ice-ufrag:ab\r\n"
    "a=ice-pwd:cdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n"
)


def test_meta_offer_looks_like_metas_edge() -> None:
    offer = meta_offer(AIORTC_OFFER)
    lines = offer.split("\r\n")
    assert offer.endswith("\r\n") and "\n" not in offer.replace("\r\n", "")
    assert lines.index("a=ice-lite") == lines.index("t=0 0") + 1
    assert "m=audio 40000 UDP/TLS/RTP/SAVPF 111 126" in lines
    assert "a=rtpmap:111 opus/48000/2" in lines
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in lines
    assert "a=rtpmap:126 telephone-event/8000" in lines
    assert "a=setup:actpass" in lines
    assert not any("PCMU" in line or "PCMA" in line or ":96 " in line for line in lines)


def test_meta_answer_keeps_offered_telephone_event() -> None:
    offer = AIORTC_OFFER.replace(" 96 0 8", " 96 101").replace(
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000"
    )
    answer = AIORTC_OFFER.replace(" 96 0 8", " 96").replace("actpass", "passive")
    result = meta_answer(answer, offer)
    assert "a=ice-lite\r\n" in result
    assert "UDP/TLS/RTP/SAVPF 96 101\r\n" in result
    assert "a=rtpmap:101 telephone-event/8000" in result


def test_browser_offer_keeps_opus_and_dtmf_8000() -> None:
    chrome = AIORTC_OFFER.replace(" 96 0 8", " 111 110 126 0").replace(
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
        "a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000",
    )
    result = browser_offer(chrome)
    assert "UDP/TLS/RTP/SAVPF 111 126\r\n" in result
    assert "telephone-event/48000" not in result and "PCMU" not in result


def test_telephone_event_packets_follow_rfc_4733() -> None:
    packets = telephone_event_packets(
        "#", ssrc=0x1234, sequence_number=65534, timestamp=1000, duration_ms=100
    )
    headers = [struct.unpack("!BBHII", p[:12]) for p in packets]
    payloads = [struct.unpack("!BBH", p[12:]) for p in packets]
    assert all(len(p) == 16 for p in packets)
    assert [h[1] & 0x80 for h in headers] == [0x80] + [0] * (len(packets) - 1)
    assert {h[1] & 0x7F for h in headers} == {126}
    assert [h[2] for h in headers][:3] == [65534, 65535, 0]
    assert {h[3] for h in headers} == {1000} and {h[4] for h in headers} == {0x1234}
    assert {p[0] for p in payloads} == {11}
    ends = [p for p in payloads if p[1] & 0x80]
    assert len(ends) == 3 and {p[2] for p in ends} == {800}
    growing = [p[2] for p in payloads if not p[1] & 0x80]
    assert growing == [160, 320, 480, 640]


def test_dominant_frequency() -> None:
    assert abs(dominant_frequency(tone(1000, 0.5)) - 1000) < 5
    assert dominant_frequency(np.zeros(100, dtype=np.int16)) == 0.0


def test_browser_offer_gives_mdns_candidates_the_browsers_address() -> None:
    hidden = AIORTC_OFFER.replace(
        "127.0.0.1 40000 typ host", "9558b4c3-68d6-4611-bb8c-f76aaea169df.local 40000 typ host"
    )
    result = browser_offer(hidden, "192.0.2.7")
    assert "a=candidate:1 1 udp 2130706431 192.0.2.7 40000 typ host\r\n" in result
    assert ".local" not in result
    assert browser_offer(AIORTC_OFFER, "192.0.2.7").count("127.0.0.1 40000") == 1
