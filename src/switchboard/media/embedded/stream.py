"""Our outbound RTP stream: one SSRC with continuous sequence numbers and timestamps, whatever feeds it.

Generated frames (playout, silence, transcoded or mixed audio, our telephone-events) and packets forwarded
from a bridged leg all leave with our SSRC. A forwarded source keeps its own spacing: its sequence numbers
and timestamps are mapped by offsets chosen when it (re)starts, so loss and reordering pass through as they
came, and a switch between sources never steps back.
"""

from __future__ import annotations

from switchboard.media.embedded.rtp import build_rtp, rewrite_header, sequence_newer

FRAME_SECONDS = 0.02
_MAX_TS_SOURCES = 4


class OutboundStream:
    """SSRC, sequence number and timestamp of what a leg sends (RFC 3550 §5.1)."""

    def __init__(self, ssrc: int, sequence: int, timestamp: int, samples_per_frame: int = 960) -> None:
        self.ssrc = ssrc
        self.samples_per_frame = samples_per_frame
        self.clock_rate = samples_per_frame * 50
        self.sequence = sequence
        """Of the last packet sent."""
        self.timestamp = timestamp
        """Of the last audio packet sent."""
        self.last_sent = 0.0
        self.last_forward = 0.0
        """When a bridged leg's packet or a fed frame last went out."""
        self._fwd_ssrc: int | None = None
        self._fwd_seq_off = 0
        self._fwd_ts_offs: dict[int, int] = {}
        self._resync = True
        self._events: dict[int, int] = {}
        """Telephone-event start timestamps, theirs → ours, for re-timestamped events."""

    def set_clock(self, samples_per_frame: int) -> None:
        if samples_per_frame != self.samples_per_frame:
            self.samples_per_frame = samples_per_frame
            self.clock_rate = samples_per_frame * 50
            self.resync()

    def resync(self) -> None:
        """Map the next forwarded packet afresh (after our own frames, or when the source changed)."""
        self._resync = True

    def next_timestamp(self, now: float) -> int:
        """Timestamp for a generated frame: the last one plus the frames elapsed since (at least one)."""
        step = self.samples_per_frame
        if self.last_sent:
            frames = round((now - self.last_sent) / FRAME_SECONDS)
            if 1 < frames < 250:
                step *= frames
        return (self.timestamp + step) & 0xFFFFFFFF

    def frame(self, payload_type: int, payload: bytes, now: float, *, marker: bool = False) -> bytes:
        """An audio packet of ours, one frame after the last."""
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = self.next_timestamp(now)
        self.last_sent = now
        return build_rtp(
            payload_type=payload_type,
            sequence=self.sequence,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )

    def event(self, payload_type: int, payload: bytes, timestamp: int, now: float, *, marker: bool) -> bytes:
        """A telephone-event packet of ours: the event's own timestamp; time still advances for audio."""
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = self.next_timestamp(now)
        self.last_sent = now
        self._resync = True
        return build_rtp(
            payload_type=payload_type,
            sequence=self.sequence,
            timestamp=timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )

    def forward(self, packet: bytes, payload_type: int, now: float, is_audio: bool) -> bytes:
        """`packet` from a bridged leg as part of our stream (header rewritten, payload untouched)."""
        in_ssrc = int.from_bytes(packet[8:12], "big")
        in_seq = (packet[2] << 8) | packet[3]
        in_ts = int.from_bytes(packet[4:8], "big")
        if self._resync or in_ssrc != self._fwd_ssrc:
            if self._resync:
                self._fwd_ts_offs.clear()
                self._resync = False
            self._fwd_ssrc = in_ssrc
            self._fwd_seq_off = self.sequence + 1 - in_seq
        ts_off = self._fwd_ts_offs.get(in_ssrc)
        if ts_off is None:
            if len(self._fwd_ts_offs) >= _MAX_TS_SOURCES:
                self._fwd_ts_offs.clear()
            ts_off = self.next_timestamp(now) - in_ts
            self._fwd_ts_offs[in_ssrc] = ts_off
        out_seq = (in_seq + self._fwd_seq_off) & 0xFFFF
        out_ts = (in_ts + ts_off) & 0xFFFFFFFF
        if sequence_newer(out_seq, self.sequence):
            self.sequence = out_seq
            if is_audio:
                self.timestamp = out_ts
                self.last_sent = now
        self.last_forward = now
        return rewrite_header(
            packet, payload_type=payload_type, sequence=out_seq, timestamp=out_ts, ssrc=self.ssrc
        )

    def fed(self, payload_type: int, payload: bytes, now: float) -> bytes:
        """A frame made for us by a transcoder or mixer: our own numbering, counted as fed."""
        self.last_forward = now
        self._resync = True
        return self.frame(payload_type, payload, now)

    def relayed_event(self, payload_type: int, packet: bytes, payload: bytes, now: float) -> bytes:
        """A telephone-event from a leg with another clock, re-timestamped to ours (one per event)."""
        in_ts = int.from_bytes(packet[4:8], "big")
        out_ts = self._events.get(in_ts)
        if out_ts is None:
            if len(self._events) >= _MAX_TS_SOURCES:
                self._events.clear()
            out_ts = self.next_timestamp(now)
            self._events[in_ts] = out_ts
        self.last_forward = now
        return self.event(payload_type, payload, out_ts, now, marker=bool(packet[1] & 0x80))
