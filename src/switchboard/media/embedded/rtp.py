"""RTP/RTCP wire helpers for the per-packet path (RFC 3550, RFC 7983 demultiplexing).

Only the 12-byte fixed header is touched; payloads, CSRCs and extensions pass through as bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_HEADER = struct.Struct("!BBHII")
"""V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""

_SR_HEADER = struct.Struct("!BBHIIIIII")
_REPORT_BLOCK = struct.Struct("!IB3sIIII")
_NTP_EPOCH_OFFSET = 2208988800


def is_rtp_or_rtcp(first_byte: int) -> bool:
    """RFC 7983: 128..191 is RTP or RTCP."""
    return 127 < first_byte < 192


def is_dtls(first_byte: int) -> bool:
    """RFC 7983: 20..63 is DTLS."""
    return 19 < first_byte < 64


def is_rtcp(packet: bytes) -> bool:
    """RFC 5761 §4: with rtcp-mux, RTCP packet types 192..223 sit where RTP's M/PT byte is."""
    return len(packet) > 1 and 191 < packet[1] < 224


def build_rtp(
    *, payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool
) -> bytes:
    return (
        RTP_HEADER.pack(
            0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        + payload
    )


def rewrite_header(packet: bytes, *, payload_type: int, sequence: int, timestamp: int, ssrc: int) -> bytes:
    """Copy of `packet` with PT (marker kept), sequence number, timestamp and SSRC replaced."""
    buf = bytearray(packet)
    RTP_HEADER.pack_into(
        buf,
        0,
        buf[0],
        (buf[1] & 0x80) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )
    return bytes(buf)


def payload_offset(packet: bytes) -> int:
    """Where the payload starts (after CSRCs and a header extension); -1 if the packet is malformed."""
    first = packet[0]
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if len(packet) < offset + 4:
            return -1
        offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
    return offset if offset <= len(packet) else -1


def rtp_payload(packet: bytes) -> bytes:
    offset = payload_offset(packet)
    if offset < 0:
        return b""
    end = len(packet)
    if packet[0] & 0x20 and end > offset:
        end -= packet[-1]
    return packet[offset:end] if end >= offset else b""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One RFC 3550 §6.4.1 reception report block."""

    ssrc: int
    fraction_lost: float
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int


def build_sender_report(
    *,
    ssrc: int,
    unix_time: float,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    cname: str,
    report: ReportBlock | None = None,
) -> bytes:
    """A compound RTCP packet: SR (with at most one report block) followed by SDES CNAME."""
    ntp = unix_time + _NTP_EPOCH_OFFSET
    ntp_sec = int(ntp) & 0xFFFFFFFF
    ntp_frac = int((ntp - int(ntp)) * (1 << 32)) & 0xFFFFFFFF
    count = 1 if report else 0
    length_words = 6 + 6 * count
    sr = _SR_HEADER.pack(
        0x80 | count,
        200,
        length_words,
        ssrc,
        ntp_sec,
        ntp_frac,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )
    if report is not None:
        lost = max(-(1 << 23), min((1 << 23) - 1, report.cumulative_lost)) & 0xFFFFFF
        sr += _REPORT_BLOCK.pack(
            report.ssrc,
            max(0, min(255, int(report.fraction_lost * 256))),
            lost.to_bytes(3, "big"),
            report.highest_sequence & 0xFFFFFFFF,
            report.jitter & 0xFFFFFFFF,
            report.lsr,
            report.dlsr,
        )
    # SDES: one chunk, CNAME item, END, padded to 32 bits.
    name = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(name)) + name + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk
    return sr + sdes


def parse_report_blocks(packet: bytes) -> list[ReportBlock]:
    """Report blocks of every SR (200) and RR (201) in a compound RTCP packet; others are skipped."""
    blocks: list[ReportBlock] = []
    pos = 0
    total = len(packet)
    while pos + 4 <= total:
        first, packet_type, length = struct.unpack_from("!BBH", packet, pos)
        end = pos + 4 + 4 * length
        if first >> 6 != 2 or end > total:
            break
        count = first & 0x1F
        if packet_type in (200, 201):
            start = pos + (28 if packet_type == 200 else 8)
            for index in range(count):
                at = start + 24 * index
                if at + 24 > end:
                    break
                ssrc, fraction, lost3, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(packet, at)
                lost = int.from_bytes(lost3, "big")
                if lost & 0x800000:
                    lost -= 1 << 24
                blocks.append(ReportBlock(ssrc, fraction / 256.0, lost, highest, jitter, lsr, dlsr))
        pos = end
    return blocks


def sequence_newer(a: int, b: int) -> bool:
    """RFC 1982 serial arithmetic for 16-bit sequence numbers: is `a` after `b`?"""
    return a != b and ((a - b) & 0xFFFF) < 0x8000
