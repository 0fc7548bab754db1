"""The RTP session of one leg, sans-I/O: received packets and the time go in; packets to send and media
events come out. No sockets, no clock, no tasks: the leg's transport shell feeds it and the engine's
ticker calls `tick(now)` every 20 ms.

The parts are small and separate: `RtcpStatistics` (rtcp.py) and `OutboundStream` (stream.py, the
SSRC/sequence/timestamp rewriter), and here `Playout`, `DtmfOut`, `RecordingTap` and the decode stage that
runs only while something consumes PCM (a recording, in-band DTMF detection, a transcoding bridge, a
mixer). Packets a bridged leg forwards pass through `forward` with their payload untouched.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from switchboard.errors import MediaError
from switchboard.media.codecs import AudioFormat, Decoder, PcmConverter, decoder_for
from switchboard.media.embedded.rtcp import RtcpStatistics
from switchboard.media.embedded.rtp import rtp_payload
from switchboard.media.embedded.stream import OutboundStream
from switchboard.media.inband import InbandDtmfDetector
from switchboard.media.recording import Recorder
from switchboard.media.rfc4733 import DtmfReceiver
from switchboard.media.types import (
    MAX_DTMF_DIGITS,
    Codec,
    DtmfReceived,
    DtmfSource,
    MediaEvent,
    MediaLocator,
    PlaybackFinished,
    RecordingFinished,
)

Pcm = npt.NDArray[np.int16]
PcmTap = Callable[[Pcm, int, float], None]
"""A consumer of the leg's decoded audio: (samples, sample rate, now)."""
Done = Callable[[Exception | None], None]

FORWARD_GAP = 0.065
"""A fed leg whose feed (bridge or mixer) sent nothing for this long gets silence from the ticker."""
RECORDING_RATE = 48000
_RECORD_BLOCK = RECORDING_RATE // 50
_RECORD_BACKLOG = 10 * _RECORD_BLOCK
"""Audio a recording holds between ticks (200 ms); older samples are dropped (late bursts)."""


class PacketKind(enum.IntEnum):
    OTHER = 0
    AUDIO = 1
    EVENT = 2


class Playout:
    """Frames of a prompt, one per tick, looped `loop_count` times (0: until stopped)."""

    def __init__(self, frames: Sequence[bytes], loop_count: int, playback_id: str) -> None:
        self.frames = frames
        self.playback_id = playback_id
        self._loops_left = loop_count if loop_count > 0 else -1
        self._index = 0
        self.sent = 0
        self.finished = not frames

    def next_frame(self) -> bytes:
        frame = self.frames[self._index]
        self._index += 1
        self.sent += 1
        if self._index >= len(self.frames):
            self._index = 0
            if self._loops_left > 0:
                self._loops_left -= 1
            if self._loops_left == 0:
                self.finished = True
        return frame


class _DtmfItem:
    __slots__ = ("done", "frames", "gap_ticks", "index", "packets", "timestamp")

    def __init__(
        self,
        *,
        packets: Sequence[tuple[bool, int, bytes]] = (),
        frames: Sequence[bytes] = (),
        gap_ticks: int = 0,
        done: Done | None = None,
    ) -> None:
        self.packets = packets
        self.frames = frames
        self.gap_ticks = gap_ticks
        self.index = 0
        self.timestamp = 0
        self.done = done


class DtmfQueueFull(MediaError):
    """A leg already has `DtmfOut.MAX_QUEUED` keys waiting to go out."""

    status_hint = 409


class DtmfOut:
    """Keys waiting to be sent: RFC 4733 packet runs (§2.5.1) or in-band tone frames, one per tick.

    At most `MAX_QUEUED` keys (and pauses) wait: two full `send_dtmf` strings."""

    MAX_QUEUED = 2 * MAX_DTMF_DIGITS

    def __init__(self) -> None:
        self.queue: deque[_DtmfItem] = deque()

    @property
    def room(self) -> int:
        return self.MAX_QUEUED - len(self.queue)

    def add_events(
        self, packets: Sequence[tuple[bool, int, bytes]], gap_ticks: int, done: Done | None
    ) -> None:
        """A key as RFC 4733 packets then `gap_ticks` of nothing (no packets: a pause);
        `DtmfQueueFull` when there is no room."""
        self._check_room()
        self.queue.append(_DtmfItem(packets=packets, gap_ticks=gap_ticks, done=done))

    def add_tones(self, frames: Sequence[bytes], done: Done | None) -> None:
        """A key as in-band tone frames; `DtmfQueueFull` when there is no room."""
        self._check_room()
        self.queue.append(_DtmfItem(frames=frames, done=done))

    def _check_room(self) -> None:
        if len(self.queue) >= self.MAX_QUEUED:
            raise DtmfQueueFull(f"{len(self.queue)} DTMF keys are already waiting to be sent")

    @property
    def on_wire(self) -> bool:
        """Our own key is being sent: forwarded packets must wait."""
        if not self.queue:
            return False
        item = self.queue[0]
        return item.index < len(item.packets) + len(item.frames)

    def fail(self, reason: str) -> None:
        while self.queue:
            item = self.queue.popleft()
            if item.done is not None:
                item.done(MediaError(f"DTMF not sent: {reason}"))


class RecordingTap:
    """What the leg receives and what it sends, decoded, mixed to mono 48 kHz, one 20 ms block per tick."""

    def __init__(self, recorder: Recorder, recording_id: str, codec: Codec) -> None:
        self.recorder = recorder
        self.recording_id = recording_id
        self._tx_decoder = decoder_for(codec)
        self._tx_rate = PcmConverter(self._tx_decoder.rate, RECORDING_RATE)
        self._rx_rate: PcmConverter | None = None
        self.rx: deque[Pcm] = deque()
        self.tx: deque[Pcm] = deque()
        self.rx_samples = 0
        self.tx_samples = 0

    def received(self, pcm: Pcm, rate: int) -> None:
        if self._rx_rate is None or self._rx_rate.from_rate != rate:
            self._rx_rate = PcmConverter(rate, RECORDING_RATE)
        block = self._rx_rate.convert(pcm)
        self.rx.append(block)
        self.rx_samples = _bound(self.rx, self.rx_samples + block.size)

    def sent(self, payload: bytes) -> None:
        try:
            pcm = self._tx_decoder.decode(payload)
        except MediaError:
            return
        block = self._tx_rate.convert(pcm)
        self.tx.append(block)
        self.tx_samples = _bound(self.tx, self.tx_samples + block.size)

    def mix_block(self) -> None:
        block = np.zeros(_RECORD_BLOCK, dtype=np.int32)
        self.rx_samples = _take(self.rx, block, self.rx_samples)
        self.tx_samples = _take(self.tx, block, self.tx_samples)
        self.recorder.write(np.clip(block, -32768, 32767).astype(np.int16))


def _bound(buffers: deque[Pcm], available: int) -> int:
    """Drop the oldest blocks beyond the backlog (while nothing takes them: no tick, a flood of packets)."""
    while available > _RECORD_BACKLOG and len(buffers) > 1:
        available -= len(buffers.popleft())
    return available


def _take(buffers: deque[Pcm], into: npt.NDArray[np.int32], available: int) -> int:
    """Add up to len(into) buffered samples into `into`; drop backlog beyond 200 ms (late bursts)."""
    while available > 10 * len(into) and buffers:
        available -= len(buffers.popleft())
    need = len(into)
    pos = 0
    while pos < need and buffers:
        head = buffers[0]
        count = min(need - pos, len(head))
        into[pos : pos + count] += head[:count]
        pos += count
        if count == len(head):
            buffers.popleft()
        else:
            buffers[0] = head[count:]
    return max(0, available - pos)


class RtpSession:
    """One leg's audio both ways. `audio` is None until the codec is negotiated (nothing flows before)."""

    def __init__(self, leg_id: str, *, ssrc: int, cname: str, sequence: int, timestamp: int) -> None:
        self.leg_id = leg_id
        self.stream = OutboundStream(ssrc, sequence, timestamp)
        self.stats = RtcpStatistics(ssrc, cname)
        self.audio: AudioFormat | None = None
        self.telephone_event_pt: int | None = None
        self.silence = b""
        self.sending = True
        """`set_sending`: False holds our audio (playback and keys wait)."""
        self.hold_silence = False
        """While held, send comfort silence instead of nothing (plain RTP: NAT bindings, no-media timers)."""
        self.peer_receives = True
        """False while the peer's SDP says it does not receive (sendonly or inactive: it holds us)."""
        self.fed = False
        """A bridge or mixer sends on this stream; the ticker fills only its gaps."""
        self.last_received = 0.0
        self.playout: Playout | None = None
        self.dtmf_out = DtmfOut()
        self.dtmf_in = DtmfReceiver()
        self.recording: RecordingTap | None = None
        self.inband: InbandDtmfDetector | None = None
        self._inband_wanted = False
        self._decoder: Decoder | None = None
        self.pcm_taps: list[PcmTap] = []
        self._narrow_taps: set[PcmTap] = set()
        self.decoded_frames = 0
        self.events: list[MediaEvent] = []

    # -- negotiation -------------------------------------------------------------------------------------

    def configure(self, audio: AudioFormat, telephone_event_pt: int | None, silence: bytes) -> None:
        """Set (or change, after a re-offer) the negotiated codec."""
        changed = self.audio is None or self.audio.codec is not audio.codec
        self.audio = audio
        self.telephone_event_pt = telephone_event_pt
        self.silence = silence
        self.stream.set_clock(audio.samples_per_frame)
        if changed:
            self._decoder = None
            self.inband = None
            self.update_decoding()

    # -- receive -----------------------------------------------------------------------------------------

    def receive_rtp(self, packet: bytes, now: float) -> PacketKind:
        """One RTP packet from the peer (already unprotected)."""
        audio = self.audio
        if audio is None or len(packet) < 12:
            return PacketKind.OTHER
        self.last_received = now
        pt = packet[1] & 0x7F
        if pt == audio.payload_type:
            self.stats.on_received(packet, now, audio.clock_rate, True)
            if self._decoder is not None:
                self._decode(rtp_payload(packet), now)
            return PacketKind.AUDIO
        self.stats.on_received(packet, now, audio.clock_rate, False)
        if pt == self.telephone_event_pt:
            try:
                result = self.dtmf_in.receive(int.from_bytes(packet[4:8], "big"), rtp_payload(packet))
            except ValueError:
                return PacketKind.OTHER
            if result is not None:
                self.events.append(DtmfReceived(self.leg_id, result[0], result[1], DtmfSource.RFC4733))
            return PacketKind.EVENT
        return PacketKind.OTHER

    def receive_rtcp(self, packet: bytes, now: float) -> None:
        self.stats.on_rtcp(packet, now)

    def _decode(self, payload: bytes, now: float) -> None:
        decoder = self._decoder
        if decoder is None or not payload:
            return
        try:
            pcm = decoder.decode(payload)
        except MediaError:
            return
        self.decoded_frames += 1
        rate = decoder.rate
        if self.recording is not None:
            self.recording.received(pcm, rate)
        if self.inband is not None:
            for digit, duration_ms in self.inband.feed(pcm):
                self.events.append(DtmfReceived(self.leg_id, digit, duration_ms, DtmfSource.INBAND))
        for tap in self.pcm_taps:
            tap(pcm, rate, now)

    # -- decoding consumers ------------------------------------------------------------------------------

    def update_decoding(self) -> None:
        """Decode received audio only while something consumes it."""
        audio = self.audio
        needs = self.recording is not None or self._inband_wanted or bool(self.pcm_taps)
        if not needs or audio is None:
            self._decoder = None
            self.inband = None
            return
        narrowband = audio.codec is not Codec.OPUS or (
            self.recording is None and len(self._narrow_taps) == len(self.pcm_taps) > 0
        )
        if self._decoder is None or (self._decoder.rate == 8000) != narrowband:
            self._decoder = decoder_for(audio.codec, narrowband=narrowband)
            self.inband = None
        if self._inband_wanted and self.inband is None:
            self.inband = InbandDtmfDetector(sample_rate=self._decoder.rate)
        elif not self._inband_wanted:
            self.inband = None

    def set_inband_detection(self, enabled: bool) -> None:
        self._inband_wanted = enabled
        self.update_decoding()

    def add_pcm_tap(self, tap: PcmTap, *, narrowband: bool = False) -> None:
        """Subscribe to decoded audio (any rate: consumers convert); `narrowband` when the consumer needs
        no more than 8 kHz, so that Opus is decoded at 8 kHz while every consumer says so."""
        self.pcm_taps.append(tap)
        if narrowband:
            self._narrow_taps.add(tap)
        self.update_decoding()

    def remove_pcm_tap(self, tap: PcmTap) -> None:
        if tap in self.pcm_taps:
            self.pcm_taps.remove(tap)
        self._narrow_taps.discard(tap)
        self.update_decoding()

    # -- send ------------------------------------------------------------------------------------------

    def _carries(self) -> bool:
        """Whether a forwarded or fed packet may go out now."""
        return (
            self.audio is not None
            and self.sending
            and self.peer_receives
            and self.playout is None
            and not self.dtmf_out.on_wire
        )

    def _sent(self, payload: bytes) -> None:
        self.stats.on_sent(len(payload))
        if self.recording is not None:
            self.recording.sent(payload)

    def forward(self, packet: bytes, now: float, kind: PacketKind) -> bytes | None:
        """A packet the bridged leg received, in our codec: rewritten into our stream, or None (dropped)."""
        if not self._carries():
            return None
        assert self.audio is not None
        if kind is PacketKind.AUDIO:
            out = self.stream.forward(packet, self.audio.payload_type, now, True)
            self.stats.on_sent(len(packet) - 12)
            if self.recording is not None:
                self.recording.sent(rtp_payload(packet))
            return out
        if self.telephone_event_pt is None:
            return None
        out = self.stream.forward(packet, self.telephone_event_pt, now, False)
        self.stats.on_sent(len(packet) - 12)
        return out

    def feed(self, payload: bytes, now: float) -> bytes | None:
        """A frame a transcoder or mixer made for us (in our codec)."""
        if not self._carries() or not payload:
            return None
        assert self.audio is not None
        out = self.stream.fed(self.audio.payload_type, payload, now)
        self._sent(payload)
        return out

    def relay_event(self, packet: bytes, now: float) -> bytes | None:
        """A telephone-event from a leg with another codec: re-timestamped into our stream."""
        if not self._carries() or self.telephone_event_pt is None:
            return None
        payload = rtp_payload(packet)
        out = self.stream.relayed_event(self.telephone_event_pt, packet, payload, now)
        self.stats.on_sent(len(payload))
        return out

    def tick(self, now: float) -> bytes | None:
        """What this leg sends at this 20 ms tick, if anything."""
        packet = self._tick(now)
        if self.recording is not None:
            self.recording.mix_block()
        return packet

    def _tick(self, now: float) -> bytes | None:
        audio = self.audio
        if audio is None or not self.peer_receives:
            return None
        if not self.sending:
            return self._frame(self.silence, now) if self.hold_silence else None
        queue = self.dtmf_out.queue
        if queue:
            item = queue[0]
            if item.index < len(item.packets):
                return self._event_packet(item, now)
            if item.index < len(item.frames):
                frame = item.frames[item.index]
                item.index += 1
                if item.index >= len(item.frames):
                    queue.popleft()
                    if item.done is not None:
                        item.done(None)
                self.stream.resync()
                return self._frame(frame, now)
            item.gap_ticks -= 1
            if item.gap_ticks <= 0:
                queue.popleft()
        playout = self.playout
        if playout is not None:
            frame = playout.next_frame()
            if playout.finished:
                self.end_playback(completed=True)
            self.stream.resync()
            return self._frame(frame, now)
        if not self.fed or now - self.stream.last_forward > FORWARD_GAP:
            self.stream.resync()
            return self._frame(self.silence, now)
        return None

    def _frame(self, payload: bytes, now: float) -> bytes:
        assert self.audio is not None
        packet = self.stream.frame(self.audio.payload_type, payload, now)
        self._sent(payload)
        return packet

    def _event_packet(self, item: _DtmfItem, now: float) -> bytes:
        assert self.telephone_event_pt is not None
        if item.index == 0:
            # RFC 4733 timestamps are in the audio's clock; the payload's durations in 8 kHz units.
            item.timestamp = self.stream.next_timestamp(now)
        marker, _duration, payload = item.packets[item.index]
        item.index += 1
        packet = self.stream.event(self.telephone_event_pt, payload, item.timestamp, now, marker=marker)
        self.stats.on_sent(len(payload))
        if item.index >= len(item.packets):
            if item.done is not None:
                item.done(None)
                item.done = None
            if item.gap_ticks <= 0:
                self.dtmf_out.queue.popleft()
        return packet

    def rtcp_report(self, now: float, unix_time: float) -> bytes:
        return self.stats.sender_report(now, unix_time, self.stream.next_timestamp(now))

    # -- content ---------------------------------------------------------------------------------------

    def play(self, frames: Sequence[bytes], loop_count: int, playback_id: str) -> None:
        self.end_playback(completed=False)
        self.playout = Playout(frames, loop_count, playback_id)
        if self.playout.finished:
            self.end_playback(completed=True)

    def end_playback(self, *, completed: bool) -> None:
        playout = self.playout
        if playout is None:
            return
        self.playout = None
        self.events.append(
            PlaybackFinished(
                self.leg_id, playout.playback_id, duration_ms=playout.sent * 20, completed=completed
            )
        )

    def start_recording(self, recorder: Recorder, recording_id: str) -> None:
        self.finish_recording()
        codec = self.audio.codec if self.audio is not None else Codec.OPUS
        self.recording = RecordingTap(recorder, recording_id, codec)
        self.update_decoding()

    def finish_recording(self) -> tuple[RecordingTap, Path] | None:
        """Stop the tap; the caller closes the file (I/O) and reports it."""
        recording = self.recording
        if recording is None:
            return None
        self.recording = None
        self.update_decoding()
        return recording, recording.recorder.path

    def recording_finished(self, tap: RecordingTap, duration_ms: int, size: int) -> None:
        self.events.append(
            RecordingFinished(
                self.leg_id, tap.recording_id, MediaLocator.for_path(tap.recorder.path), duration_ms, size
            )
        )

    def take_events(self) -> list[MediaEvent]:
        events, self.events = self.events, []
        return events
