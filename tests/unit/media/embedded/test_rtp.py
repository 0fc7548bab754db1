"""RTP header rewriting, RTCP reports and the forwarding continuity of a leg's outbound stream."""

from __future__ import annotations

import itertools
import struct

from switchboard.media.codecs import AudioFormat
from switchboard.media.embedded.rtp import (
    RTP_HEADER,
    ReportBlock,
    build_rtp,
    build_sender_report,
    is_rtcp,
    parse_report_blocks,
    rewrite_header,
    rtp_payload,
    sequence_newer,
)
from switchboard.media.embedded.session import PacketKind, RtpSession
from switchboard.media.engine import Codec


def _fields(packet: bytes) -> tuple[int, int, int, int, int]:
    _first, second, seq, ts, ssrc = RTP_HEADER.unpack_from(packet)
    return second >> 7, second & 0x7F, seq, ts, ssrc


def test_rewrite_keeps_marker_and_payload() -> None:
    packet = build_rtp(
        payload_type=96, sequence=65535, timestamp=0xFFFFFFFF, ssrc=1, payload=b"opus", marker=True
    )
    out = rewrite_header(packet, payload_type=111, sequence=65536 + 5, timestamp=2**32 + 7, ssrc=9)
    assert _fields(out) == (1, 111, 5, 7, 9)
    assert out[12:] == b"opus"
    assert not is_rtcp(out)


def test_payload_skips_csrc_extension_and_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 1, 111]) + struct.pack("!HII", 1, 2, 3)
    csrc = struct.pack("!I", 77)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\x01\x00\x00"
    packet = header + csrc + extension + b"DATA" + b"\x00\x00\x03"
    assert rtp_payload(packet) == b"DATA"


def test_sequence_newer_wraps() -> None:
    assert sequence_newer(1, 65535)
    assert not sequence_newer(65535, 1)
    assert not sequence_newer(5, 5)


def test_sender_report_round_trip() -> None:
    block = ReportBlock(
        ssrc=5, fraction_lost=0.25, cumulative_lost=3, highest_sequence=70000, jitter=480, lsr=1, dlsr=2
    )
    packet = build_sender_report(
        ssrc=1, unix_time=1.7e9, rtp_timestamp=960, packet_count=10, octet_count=1000, cname="x", report=block
    )
    assert is_rtcp(packet)
    assert len(packet) % 4 == 0
    assert parse_report_blocks(packet) == [block]


def _session() -> RtpSession:
    session = RtpSession("leg", ssrc=4242, cname="c", sequence=65530, timestamp=2**32 - 2000)
    session.configure(AudioFormat(Codec.OPUS, 111), 126, b"\xf8\xff\xfe")
    return session


def test_outbound_stream_is_continuous_across_silence_forwarding_and_ssrc_change() -> None:
    session = _session()
    sent: list[bytes] = []
    now = 100.0

    def tick() -> None:
        packet = session.tick(now)
        if packet is not None:
            sent.append(packet)

    for _ in range(3):  # silence from the ticker
        tick()
        now += 0.02
    session.fed = True
    for index in range(5):  # forwarded from the bridged leg (its own SSRC/seq/ts/PT)
        packet = build_rtp(
            payload_type=96,
            sequence=40000 + index,
            timestamp=123 + 960 * index,
            ssrc=555,
            payload=b"x",
            marker=False,
        )
        out = session.forward(packet, now, PacketKind.AUDIO)
        assert out is not None
        sent.append(out)
        tick()  # forwarding is fresh: the ticker adds nothing
        now += 0.02
    for index in range(3):  # the other side restarted with a new SSRC
        packet = build_rtp(
            payload_type=96,
            sequence=7 + index,
            timestamp=9 + 960 * index,
            ssrc=666,
            payload=b"y",
            marker=False,
        )
        out = session.forward(packet, now, PacketKind.AUDIO)
        assert out is not None
        sent.append(out)
        now += 0.02
    now += 0.1
    tick()  # nothing forwarded for > 60 ms: silence again
    fields = [_fields(packet) for packet in sent]
    assert len(fields) == 12
    assert {f[4] for f in fields} == {4242}
    assert {f[1] for f in fields} == {111}
    seqs = [f[2] for f in fields]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    stamps = [f[3] for f in fields]
    steps = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)]
    assert all(step % 960 == 0 and 0 < step <= 960 * 8 for step in steps), steps
    assert session.stats.packets_sent == 12
