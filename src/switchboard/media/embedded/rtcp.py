"""RTCP statistics of one leg (RFC 3550): what we received (A.1 sequence and loss, A.8 jitter), what we
sent, and what the peer reports about our stream. Sans-I/O: times are arguments."""

from __future__ import annotations

from switchboard.media.embedded.rtp import ReportBlock, build_sender_report, parse_report_blocks


class RtcpStatistics:
    """Counters for one audio SSRC each way, and the SR + report block that carries them."""

    def __init__(self, ssrc: int, cname: str) -> None:
        self.ssrc = ssrc
        self.cname = cname
        # Sent (RFC 3550 §6.4.1 sender info).
        self.packets_sent = 0
        self.octets_sent = 0
        # Received: the audio SSRC being tracked (A.1).
        self.packets_received = 0
        self.source_ssrc = 0
        self._source_bytes = b""
        self._base_seq = -1
        self._max_seq = -1
        self._cycles = 0
        self._seq_count = 0
        self._lost_prior = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._transit: int | None = None
        self.jitter = 0.0
        """A.8 interarrival jitter, in RTP timestamp units of the received audio."""
        self._lsr = 0
        self._lsr_at = 0.0
        # What the peer said about our stream.
        self.remote_fraction_lost: float | None = None
        self.remote_jitter: int | None = None

    def on_received(self, packet: bytes, now: float, clock_rate: int, is_audio: bool) -> None:
        """Account one received RTP packet (audio packets also drive sequence tracking and jitter)."""
        self.packets_received += 1
        seq = (packet[2] << 8) | packet[3]
        if packet[8:12] == self._source_bytes:
            self._seq_count += 1
            delta = (seq - self._max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if seq < self._max_seq:
                    self._cycles += 0x10000
                self._max_seq = seq
        elif is_audio:
            self._restart(packet[8:12], seq)
        else:
            return
        if is_audio:
            transit = int(now * clock_rate) - int.from_bytes(packet[4:8], "big")
            previous = self._transit
            self._transit = transit
            if previous is not None:
                d = transit - previous
                if d < 0:
                    d = -d
                if d < 0x40000000:
                    self.jitter += (d - self.jitter) / 16.0

    def _restart(self, ssrc: bytes, seq: int) -> None:
        """The peer's audio (re)started on a new SSRC: keep the loss so far, track the new stream."""
        if self._base_seq >= 0:
            self._lost_prior += max(0, self._expected() - self._seq_count)
        self._source_bytes = ssrc
        self.source_ssrc = int.from_bytes(ssrc, "big")
        self._base_seq = self._max_seq = seq
        self._cycles = 0
        self._seq_count = 1
        self._expected_prior = self._received_prior = 0
        self._transit = None

    def _expected(self) -> int:
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def packets_lost(self) -> int | None:
        if self._base_seq < 0:
            return None
        return self._lost_prior + max(0, self._expected() - self._seq_count)

    def on_sent(self, payload_octets: int) -> None:
        self.packets_sent += 1
        self.octets_sent += payload_octets

    def on_rtcp(self, packet: bytes, now: float) -> None:
        """A compound RTCP packet from the peer (already unprotected)."""
        if len(packet) >= 20 and packet[1] == 200:
            # Middle 32 bits of the SR's NTP timestamp, for our report's LSR (RFC 3550 §6.4.1).
            self._lsr = int.from_bytes(packet[10:14], "big")
            self._lsr_at = now
        for block in parse_report_blocks(packet):
            if block.ssrc == self.ssrc:
                self.remote_fraction_lost = block.fraction_lost
                self.remote_jitter = block.jitter

    def report_block(self, now: float) -> ReportBlock | None:
        if self._base_seq < 0:
            return None
        expected = self._expected()
        expected_interval = expected - self._expected_prior
        received_interval = self._seq_count - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._seq_count
        lost_interval = expected_interval - received_interval
        fraction = lost_interval / expected_interval if expected_interval > 0 and lost_interval > 0 else 0.0
        dlsr = int((now - self._lsr_at) * 65536) if self._lsr else 0
        return ReportBlock(
            ssrc=self.source_ssrc,
            fraction_lost=fraction,
            cumulative_lost=expected - self._seq_count,
            highest_sequence=self._cycles + self._max_seq,
            jitter=int(self.jitter),
            lsr=self._lsr,
            dlsr=dlsr & 0xFFFFFFFF,
        )

    def sender_report(self, now: float, unix_time: float, rtp_timestamp: int) -> bytes:
        """SR with one report block (when we receive audio) and SDES CNAME (RFC 3550 §6.1 compound)."""
        return build_sender_report(
            ssrc=self.ssrc,
            unix_time=unix_time,
            rtp_timestamp=rtp_timestamp,
            packet_count=self.packets_sent,
            octet_count=self.octets_sent,
            cname=self.cname,
            report=self.report_block(now),
        )
