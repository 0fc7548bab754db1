"""One WhatsApp-facing audio leg: ICE (aioice) + sans-I/O DTLS-SRTP + pylibsrtp, no RTCPeerConnection.

The per-packet path (`_on_datagram`, `_forward`) is synchronous, touches only the 12-byte RTP header and
never decodes unless a recording or in-band DTMF capture asked for PCM. Everything periodic (frames to send,
DTLS retransmission, timeouts, RTCP) is driven by the engine's one ticker through `_tick`,
`_dtls_timer`, `_housekeeping` and `_send_rtcp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pylibsrtp

from switchboard.errors import MediaError
from switchboard.media.audio import OpusDecoder
from switchboard.media.embedded.dtls import DtlsRole, DtlsSrtpSession, DtlsState
from switchboard.media.embedded.ice import IceAgent
from switchboard.media.embedded.rtp import (
    ReportBlock,
    build_rtp,
    build_sender_report,
    parse_report_blocks,
    rewrite_header,
    rtp_payload,
    sequence_newer,
)
from switchboard.media.embedded.sdp import (
    AudioDescription,
    DtlsSetup,
    build_description,
    parse_audio_description,
)
from switchboard.media.engine import (
    AudioSource,
    DtmfReceived,
    DtmfSource,
    LegSpec,
    MediaClosed,
    MediaDiagnostics,
    MediaEvent,
    MediaEventSink,
    MediaFailed,
    MediaLocator,
    MediaStarted,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
)
from switchboard.media.inband import InbandDtmfDetector
from switchboard.media.recording import OggOpusRecorder, WavRecorder
from switchboard.media.rfc4733 import DIGITS, DtmfReceiver, DtmfSender

if TYPE_CHECKING:
    from switchboard.media.embedded.engine import EmbeddedMediaEngine

logger = logging.getLogger(__name__)

Pcm = npt.NDArray[np.int16]

SAMPLES_PER_FRAME = 960
"""20 ms at Opus's 48 kHz RTP clock (RFC 7587 §4.1)."""
FRAME_SECONDS = 0.02
FORWARD_GAP = 0.065
"""A bridged leg whose other side forwarded nothing for this long gets silence from the ticker."""
_MAX_TS_SOURCES = 4


class _Recorder(Protocol):
    def write(self, pcm: Pcm) -> None: ...

    def close(self) -> tuple[int, int]: ...


class _Recording:
    """Both directions decoded and mixed to mono, one 20 ms block per tick."""

    def __init__(self, recorder: _Recorder, path: Path, recording_id: str) -> None:
        self.recorder = recorder
        self.path = path
        self.recording_id = recording_id
        self.tx_decoder = OpusDecoder()
        self.rx: deque[Pcm] = deque()
        self.tx: deque[Pcm] = deque()
        self.rx_samples = 0
        self.tx_samples = 0

    def mix_block(self) -> None:
        block = np.zeros(SAMPLES_PER_FRAME, dtype=np.int32)
        self.rx_samples = _take(self.rx, block, self.rx_samples)
        self.tx_samples = _take(self.tx, block, self.tx_samples)
        self.recorder.write(np.clip(block, -32768, 32767).astype(np.int16))


def _take(buffers: deque[Pcm], into: npt.NDArray[np.int32], available: int) -> int:
    """Add up to len(into) buffered samples into `into`; drop backlog beyond 200 ms (late bursts)."""
    while available > 10 * SAMPLES_PER_FRAME and buffers:
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


class _DtmfItem:
    __slots__ = ("done", "gap_ticks", "index", "packets", "timestamp")

    def __init__(
        self,
        packets: list[tuple[bool, int, bytes]],
        gap_ticks: int,
        done: asyncio.Future[None] | None,
    ) -> None:
        self.packets = packets
        self.gap_ticks = gap_ticks
        self.index = 0
        self.timestamp = 0
        self.done = done


class EmbeddedLeg:
    """`MediaLeg` of the embedded engine."""

    def __init__(self, engine: EmbeddedMediaEngine, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> None:
        self._engine = engine
        self._spec = spec
        self._id = leg_id
        self._sink = sink
        self._diag = MediaDiagnostics()
        self._ice = IceAgent(self._on_datagram)
        self._dtls: DtlsSrtpSession | None = None
        self._tx: Any = None
        self._rx: Any = None
        self._remote: AudioDescription | None = None
        self._local_sdp: str | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._closed = False
        self._failed = False
        self._media_started_at = 0.0
        self._dtls_started_at = 0.0
        self._cname = secrets.token_hex(8)
        # Outbound stream.
        self.ssrc = secrets.randbits(32) or 1
        self._opus_pt = 111
        self._dtmf_pt: int | None = 126
        self._seq = secrets.randbits(16)
        """Sequence number of the last packet sent."""
        self._ts = secrets.randbits(32)
        """RTP timestamp of the last audio packet sent."""
        self._last_sent = 0.0
        self._packets_sent = 0
        self._bytes_sent = 0
        self._payload_bytes_sent = 0
        self._last_rtcp_ts = 0
        # Bridge.
        self.peer: EmbeddedLeg | None = None
        self._held = False
        """Outbound audio is held (`set_sending(False)`): nothing is sent but RTCP."""
        self._last_forward = 0.0
        self._fwd_ssrc: int | None = None
        self._fwd_seq_off = 0
        self._fwd_ts_offs: dict[int, int] = {}
        self._fwd_resync = True
        # Playback.
        self._play_frames: Sequence[bytes] | None = None
        self._play_index = 0
        self._play_loops_left = 0
        self._play_id = ""
        self._play_sent = 0
        # DTMF out.
        self._dtmf_queue: deque[_DtmfItem] = deque()
        # Inbound stream.
        self._last_rx = 0.0
        self._rx_count = 0
        self._rx_bytes = 0
        self._rx_base_seq = -1
        self._rx_max_seq = -1
        self._rx_cycles = 0
        self._rx_transit: int | None = None
        self._rx_jitter = 0.0
        self._rx_ssrc = 0
        self._rx_ssrc_bytes = b""
        self._rx_seq_count = 0
        self._rx_lost_prior = 0
        self._rx_expected_prior = 0
        self._rx_received_prior = 0
        self._rx_lsr = 0
        self._rx_lsr_at = 0.0
        self._dtmf_rx = DtmfReceiver()
        # Decoding consumers (only while needed).
        self._rx_decoder: OpusDecoder | None = None
        self._inband: InbandDtmfDetector | None = None
        self._recording: _Recording | None = None

    # -- MediaLeg ---------------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def spec(self) -> LegSpec:
        return self._spec

    async def answer(self, remote_offer: str) -> str:
        self._check_open("answer")
        remote = parse_audio_description(remote_offer, what="offer")
        if remote.setup is DtlsSetup.ACTIVE:
            setup, role = DtlsSetup.PASSIVE, DtlsRole.SERVER
        else:
            setup, role = DtlsSetup.ACTIVE, DtlsRole.CLIENT
        self._apply_remote(remote, role)
        candidates = await self._gather()
        self._local_sdp = self._build(candidates, setup, remote.mid or None)
        self._start_connect()
        return self._local_sdp

    async def offer(self) -> str:
        self._check_open("offer")
        candidates = await self._gather()
        self._local_sdp = self._build(candidates, DtlsSetup.ACTPASS, "0")
        return self._local_sdp

    async def accept_answer(self, remote_answer: str) -> None:
        self._check_open("accept an answer")
        if self._local_sdp is None:
            raise MediaError("accept_answer() needs an offer() first")
        remote = parse_audio_description(remote_answer, what="answer")
        if remote.setup is DtlsSetup.ACTIVE:
            role = DtlsRole.SERVER
        elif remote.setup is DtlsSetup.PASSIVE:
            role = DtlsRole.CLIENT
        else:
            raise MediaError(f"SDP answer has a=setup:{remote.setup}; an answer must be active or passive")
        self._apply_remote(remote, role)
        self._start_connect()

    async def play(self, source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        self._check_open("play")
        frames = await self._engine.frame_cache.frames_async(source)
        if self._closed:
            return
        self._end_playback(completed=False)
        self._play_frames = frames
        self._play_index = 0
        self._play_loops_left = loop_count if loop_count > 0 else -1
        self._play_id = playback_id
        self._play_sent = 0
        if not frames:
            self._end_playback(completed=True)

    async def stop_play(self) -> None:
        self._end_playback(completed=False)

    async def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        self._check_open("send DTMF")
        if self._dtmf_pt is None:
            raise MediaError("the peer did not negotiate telephone-event/8000: cannot send RFC 4733 DTMF")
        bad = [digit for digit in digits if digit.upper() not in DIGITS]
        if bad:
            raise MediaError(f"not DTMF digits: {''.join(bad)!r} (allowed: {DIGITS})")
        if not digits:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gap_ticks = max(1, round(gap_ms / 20))
        for index, digit in enumerate(digits):
            last = index == len(digits) - 1
            packets = DtmfSender(digit, duration_ms=duration_ms, ptime_ms=20).packets()
            self._dtmf_queue.append(_DtmfItem(packets, 0 if last else gap_ticks, done if last else None))
        await done

    async def start_recording(self, target: MediaLocator, *, fmt: RecordingFormat, recording_id: str) -> None:
        self._check_open("record")
        self._finish_recording()
        path = target.path
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder: _Recorder = WavRecorder(path) if fmt is RecordingFormat.WAV else OggOpusRecorder(path)
        self._recording = _Recording(recorder, path, recording_id)
        self._update_decoding()

    async def stop_recording(self) -> None:
        self._finish_recording()

    def set_sending(self, enabled: bool) -> None:
        self._held = not enabled

    def enable_inband_dtmf(self, enabled: bool) -> None:
        if enabled and self._inband is None:
            self._inband = InbandDtmfDetector(sample_rate=48000)
        elif not enabled:
            self._inband = None
        self._update_decoding()

    def diagnostics(self) -> MediaDiagnostics:
        d = self._diag
        d.packets_sent = self._packets_sent
        d.bytes_sent = self._bytes_sent
        d.packets_received = self._rx_count
        d.bytes_received = self._rx_bytes
        if self._rx_base_seq >= 0:
            expected = self._rx_cycles + self._rx_max_seq - self._rx_base_seq + 1
            d.packets_lost = self._rx_lost_prior + max(0, expected - self._rx_seq_count)
            d.local_jitter_ms = round(self._rx_jitter / 48.0, 3)
        d.selected_pair = self._ice.selected_pair() or d.selected_pair
        return MediaDiagnostics(
            ice_state=d.ice_state,
            dtls_state=d.dtls_state,
            state_changes=list(d.state_changes),
            selected_pair=d.selected_pair,
            packets_sent=d.packets_sent,
            packets_received=d.packets_received,
            bytes_sent=d.bytes_sent,
            bytes_received=d.bytes_received,
            remote_fraction_lost=d.remote_fraction_lost,
            remote_jitter_ms=d.remote_jitter_ms,
            local_jitter_ms=d.local_jitter_ms,
            packets_lost=d.packets_lost,
            codec=d.codec,
            failure=d.failure,
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._engine._forget(self)
        if self.peer is not None:
            self.peer._unpeer()
            self._unpeer()
        self._end_playback(completed=False)
        self._fail_dtmf("leg closed")
        self._finish_recording()
        if self._dtls is not None:
            for datagram in self._dtls.close():
                self._ice.send_datagram(datagram)
            if self._diag.dtls_state not in ("failed",):
                self._set_state("dtls", "closed")
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        with contextlib.suppress(Exception):
            await self._ice.close()
        if self._diag.ice_state not in ("failed",):
            self._set_state("ice", "closed")

    # -- setup ------------------------------------------------------------------------------------------

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise MediaError(f"cannot {action}: media leg {self._id!r} is closed")

    def _apply_remote(self, remote: AudioDescription, role: DtlsRole) -> None:
        if self._remote is not None:
            raise MediaError(f"media leg {self._id!r} already has a remote description")
        if not remote.candidates and not remote.connection_address:
            raise MediaError("SDP has no ICE candidates and no connection address")
        self._remote = remote
        self._opus_pt = remote.opus_pt
        self._dtmf_pt = remote.telephone_event_pt
        self._diag.codec = "opus/48000/2"
        self._dtls = DtlsSrtpSession(self._engine.dtls_context, role, remote.fingerprints)

    async def _gather(self) -> list[str]:
        if not self._ice.local_candidates:
            candidates = await self._ice.gather(self._engine.addresses)
            if not candidates:
                raise MediaError(f"could not bind a UDP socket on any of {list(self._engine.addresses)}")
        result = []
        public = self._engine.public_address
        for candidate in self._ice.local_candidates:
            if public is not None:
                result.append(
                    f"{candidate.foundation}1 1 udp {candidate.priority + 1} {public} "
                    f"{candidate.port} typ host"
                )
            result.append(candidate.to_sdp())
        return result

    def _build(self, candidates: list[str], setup: DtlsSetup, mid: str | None) -> str:
        first = self._ice.local_candidates[0]
        address = self._engine.public_address or first.host
        return build_description(
            session_id=secrets.randbits(62),
            address=address,
            port=first.port,
            ice_ufrag=self._ice.local_username,
            ice_pwd=self._ice.local_password,
            fingerprint=self._engine.dtls_context.fingerprint,
            setup=setup,
            opus_pt=self._opus_pt,
            telephone_event_pt=self._dtmf_pt,
            candidates=candidates,
            ssrc=self.ssrc,
            cname=self._cname,
            mid=mid,
        )

    def _start_connect(self) -> None:
        self._connect_task = asyncio.create_task(self._connect(), name=f"media-connect-{self._id}")

    async def _connect(self) -> None:
        remote = self._remote
        assert remote is not None and self._dtls is not None
        self._ice.remote_username = remote.ice_ufrag
        self._ice.remote_password = remote.ice_pwd
        self._ice.remote_is_lite = remote.ice_lite
        candidates = list(remote.candidates)
        if not candidates and remote.connection_address:
            candidates = [f"1 1 udp 2130706431 {remote.connection_address} {remote.port} typ host"]
        await self._ice.add_remote_candidates(candidates, self._engine.remote_networks)
        self._set_state("ice", "checking")
        try:
            await asyncio.wait_for(self._ice.connect(), self._engine.ice_timeout)
        except (ConnectionError, TimeoutError):
            tried = self._ice.tried_pairs()
            if not tried:
                reason = (
                    "ICE failed: the peer offered no candidate this server may use "
                    f"({len(candidates)} in its SDP; check [server] media_remote_networks)"
                )
            else:
                reason = (
                    f"ICE failed: no candidate pair answered connectivity checks (tried {', '.join(tried)})"
                )
            self._fail(reason, what="ice")
            return
        self._ice.on_connected()
        self._diag.selected_pair = self._ice.selected_pair()
        self._set_state("ice", "completed")
        now = time.monotonic()
        self._dtls_started_at = now
        self._set_state("dtls", "connecting")
        for datagram in self._dtls.start(now):
            self._ice.send_datagram(datagram)
        self._check_dtls(now)
        if self._dtls.state is DtlsState.CONNECTING:
            self._engine._handshaking.add(self)

    # -- receive path -----------------------------------------------------------------------------------

    def _on_datagram(self, data: bytes) -> None:
        first = data[0]
        if 127 < first < 192:
            rx = self._rx
            if rx is None:
                return
            if 191 < data[1] < 224:
                self._on_rtcp(data)
                return
            try:
                packet = rx.unprotect(data)
            except pylibsrtp.Error:
                return
            if len(packet) < 12:
                return
            now = time.monotonic()
            self._last_rx = now
            self._rx_count += 1
            self._rx_bytes += len(data)
            pt = packet[1] & 0x7F
            seq = (packet[2] << 8) | packet[3]
            if packet[8:12] == self._rx_ssrc_bytes:
                # RFC 3550 A.1 sequence tracking, for the audio SSRC only.
                self._rx_seq_count += 1
                delta = (seq - self._rx_max_seq) & 0xFFFF
                if 0 < delta < 0x8000:
                    if seq < self._rx_max_seq:
                        self._rx_cycles += 0x10000
                    self._rx_max_seq = seq
            elif pt == self._opus_pt:
                self._restart_rx_stream(packet[8:12], seq)
            timestamp = int.from_bytes(packet[4:8], "big")
            if pt == self._opus_pt:
                # RFC 3550 A.8 interarrival jitter, in 48 kHz timestamp units.
                transit = int(now * 48000) - timestamp
                previous = self._rx_transit
                self._rx_transit = transit
                if previous is not None:
                    d = transit - previous
                    if d < 0:
                        d = -d
                    if d < 0x40000000:
                        self._rx_jitter += (d - self._rx_jitter) / 16.0
                peer = self.peer
                if peer is not None:
                    peer._forward(packet, now, peer._opus_pt, True)
                if self._rx_decoder is not None:
                    self._decode_received(rtp_payload(packet))
            elif pt == self._dtmf_pt:
                self._on_telephone_event(packet, timestamp, now)
        elif 19 < first < 64:
            self._on_dtls(data)

    def _on_telephone_event(self, packet: bytes, timestamp: int, now: float) -> None:
        try:
            result = self._dtmf_rx.receive(timestamp, rtp_payload(packet))
        except ValueError:
            return
        peer = self.peer
        if peer is not None and peer._dtmf_pt is not None:
            peer._forward(packet, now, peer._dtmf_pt, False)
        if result is not None:
            digit, duration_ms = result
            self._emit(DtmfReceived(self._id, digit, duration_ms, DtmfSource.RFC4733))

    def _restart_rx_stream(self, ssrc: bytes, seq: int) -> None:
        """The peer's audio (re)started on a new SSRC: keep the loss so far, track the new stream."""
        if self._rx_base_seq >= 0:
            expected = self._rx_cycles + self._rx_max_seq - self._rx_base_seq + 1
            self._rx_lost_prior += max(0, expected - self._rx_seq_count)
        self._rx_ssrc_bytes = ssrc
        self._rx_ssrc = int.from_bytes(ssrc, "big")
        self._rx_base_seq = self._rx_max_seq = seq
        self._rx_cycles = 0
        self._rx_seq_count = 1
        self._rx_expected_prior = self._rx_received_prior = 0

    def _decode_received(self, payload: bytes) -> None:
        decoder = self._rx_decoder
        if decoder is None:
            return
        try:
            pcm = decoder.decode(payload)
        except MediaError:
            return
        recording = self._recording
        if recording is not None:
            recording.rx.append(pcm)
            recording.rx_samples += len(pcm)
        if self._inband is not None:
            for digit, duration_ms in self._inband.feed(pcm):
                self._emit(DtmfReceived(self._id, digit, duration_ms, DtmfSource.INBAND))

    def _on_rtcp(self, data: bytes) -> None:
        try:
            packet = self._rx.unprotect_rtcp(data)
        except pylibsrtp.Error:
            return
        if len(packet) >= 20 and packet[1] == 200:
            # Middle 32 bits of the SR's NTP timestamp, for our RR's LSR (RFC 3550 §6.4.1).
            self._rx_lsr = int.from_bytes(packet[10:14], "big")
            self._rx_lsr_at = time.monotonic()
        for block in parse_report_blocks(packet):
            if block.ssrc == self.ssrc:
                self._diag.remote_fraction_lost = block.fraction_lost
                self._diag.remote_jitter_ms = round(block.jitter / 48.0, 3)

    def _on_dtls(self, data: bytes) -> None:
        dtls = self._dtls
        if dtls is None:
            return
        now = time.monotonic()
        out, _ = dtls.receive(data, now)
        for datagram in out:
            self._ice.send_datagram(datagram)
        self._check_dtls(now)

    def _check_dtls(self, now: float) -> None:
        dtls = self._dtls
        if dtls is None or self._failed:
            return
        if dtls.state is DtlsState.CONNECTED and self._tx is None:
            self._tx, self._rx = dtls.tx_srtp, dtls.rx_srtp
            self._engine._handshaking.discard(self)
            self._set_state("dtls", "connected")
            self._media_started_at = now
            self._last_rx = now
            self._engine._active.add(self)
            self._emit(MediaStarted(self._id))
        elif dtls.state is DtlsState.FAILED:
            self._fail(dtls.failure or "DTLS handshake failed", what="dtls")
        elif dtls.state is DtlsState.CLOSED and self._tx is not None:
            self._fail("the peer closed the media session (DTLS close_notify)", what="dtls", clean=True)

    # -- send path --------------------------------------------------------------------------------------

    def _send(self, packet: bytes) -> None:
        data = self._tx.protect(packet)
        self._ice.send_datagram(data)
        self._packets_sent += 1
        self._bytes_sent += len(data)

    def _next_timestamp(self, now: float) -> int:
        """Timestamp for a generated frame: the last one plus the frames elapsed since (at least one)."""
        if self._last_sent:
            frames = round((now - self._last_sent) / FRAME_SECONDS)
            step = SAMPLES_PER_FRAME * (frames if frames > 1 else 1)
            if step > 48000 * 5:
                step = SAMPLES_PER_FRAME
        else:
            step = SAMPLES_PER_FRAME
        return (self._ts + step) & 0xFFFFFFFF

    def _send_frame(self, payload: bytes, now: float) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = self._next_timestamp(now)
        self._last_sent = now
        self._send(
            build_rtp(
                payload_type=self._opus_pt,
                sequence=self._seq,
                timestamp=self._ts,
                ssrc=self.ssrc,
                payload=payload,
                marker=False,
            )
        )
        self._payload_bytes_sent += len(payload)
        if self._recording is not None:
            self._record_sent(payload)

    def _forward(self, packet: bytes, now: float, payload_type: int, is_audio: bool) -> None:
        """Send a packet the bridged leg received, as part of our own continuous stream."""
        if self._tx is None or self._play_frames is not None or self._failed or self._held:
            return
        if self._dtmf_queue and self._dtmf_queue[0].index < len(self._dtmf_queue[0].packets):
            return  # our own telephone-event is on the wire
        in_ssrc = int.from_bytes(packet[8:12], "big")
        in_seq = (packet[2] << 8) | packet[3]
        in_ts = int.from_bytes(packet[4:8], "big")
        if self._fwd_resync or in_ssrc != self._fwd_ssrc:
            if self._fwd_resync:
                self._fwd_ts_offs.clear()
                self._fwd_resync = False
            self._fwd_ssrc = in_ssrc
            self._fwd_seq_off = self._seq + 1 - in_seq
        ts_off = self._fwd_ts_offs.get(in_ssrc)
        if ts_off is None:
            if len(self._fwd_ts_offs) >= _MAX_TS_SOURCES:
                self._fwd_ts_offs.clear()
            ts_off = self._next_timestamp(now) - in_ts
            self._fwd_ts_offs[in_ssrc] = ts_off
        out_seq = (in_seq + self._fwd_seq_off) & 0xFFFF
        out_ts = (in_ts + ts_off) & 0xFFFFFFFF
        if sequence_newer(out_seq, self._seq):
            self._seq = out_seq
            if is_audio:
                self._ts = out_ts
                self._last_sent = now
        self._last_forward = now
        self._send(
            rewrite_header(
                packet, payload_type=payload_type, sequence=out_seq, timestamp=out_ts, ssrc=self.ssrc
            )
        )
        if is_audio:
            self._payload_bytes_sent += len(packet) - 12
            if self._recording is not None:
                self._record_sent(rtp_payload(packet))

    def _record_sent(self, payload: bytes) -> None:
        recording = self._recording
        if recording is None:
            return
        try:
            pcm = recording.tx_decoder.decode(payload)
        except MediaError:
            return
        recording.tx.append(pcm)
        recording.tx_samples += len(pcm)

    # -- ticker hooks -----------------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Called by the engine every 20 ms once SRTP is up: send what this leg should send now."""
        if self._held:
            return
        queue = self._dtmf_queue
        if queue:
            item = queue[0]
            if item.index < len(item.packets):
                self._send_dtmf_packet(item, now)
                if self._recording is not None:
                    self._recording.mix_block()
                return
            item.gap_ticks -= 1
            if item.gap_ticks <= 0:
                queue.popleft()
        frames = self._play_frames
        if frames is not None:
            self._send_frame(frames[self._play_index], now)
            self._play_index += 1
            self._play_sent += 1
            if self._play_index >= len(frames):
                self._play_index = 0
                if self._play_loops_left > 0:
                    self._play_loops_left -= 1
                if self._play_loops_left == 0:
                    self._end_playback(completed=True)
            self._fwd_resync = True
        elif self.peer is None or now - self._last_forward > FORWARD_GAP:
            self._send_frame(self._engine.silence, now)
            self._fwd_resync = True
        if self._recording is not None:
            self._recording.mix_block()

    def _send_dtmf_packet(self, item: _DtmfItem, now: float) -> None:
        assert self._dtmf_pt is not None
        if item.index == 0:
            item.timestamp = self._next_timestamp(now)
        marker, _duration, payload = item.packets[item.index]
        item.index += 1
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = self._next_timestamp(now)
        self._last_sent = now
        self._fwd_resync = True
        self._send(
            build_rtp(
                payload_type=self._dtmf_pt,
                sequence=self._seq,
                timestamp=item.timestamp,
                ssrc=self.ssrc,
                payload=payload,
                marker=marker,
            )
        )
        if item.index >= len(item.packets):
            if item.done is not None and not item.done.done():
                item.done.set_result(None)
            if item.gap_ticks <= 0:
                self._dtmf_queue.popleft()

    def _dtls_timer(self, now: float) -> None:
        dtls = self._dtls
        if dtls is None:
            self._engine._handshaking.discard(self)
            return
        if dtls.next_timeout is not None and now >= dtls.next_timeout:
            for datagram in dtls.handle_timeout(now):
                self._ice.send_datagram(datagram)
            self._check_dtls(now)

    def _housekeeping(self, now: float) -> None:
        """About once a second: the timeouts that fail a leg."""
        if self._failed or self._closed:
            return
        timeouts = self._engine
        if self._tx is not None:
            if self._ice.closed:
                self._fail(
                    "ICE failed: consent expired (the peer stopped answering connectivity checks)",
                    what="ice",
                )
            elif now - self._last_rx > timeouts.no_media_timeout:
                detail = "" if self._rx_count else " (none received since DTLS connected)"
                self._fail(f"no RTP from the peer for {now - self._last_rx:.0f} s{detail}")
        elif self._dtls_started_at and now - self._dtls_started_at > timeouts.dtls_timeout:
            self._fail(
                f"DTLS handshake timed out after {timeouts.dtls_timeout:.0f} s "
                "(ICE connected but the peer did not complete DTLS)",
                what="dtls",
            )

    def _send_rtcp(self, now: float) -> None:
        if self._tx is None or self._failed:
            return
        report = None
        if self._rx_base_seq >= 0:
            extended_max = self._rx_cycles + self._rx_max_seq
            expected = extended_max - self._rx_base_seq + 1
            expected_interval = expected - self._rx_expected_prior
            received_interval = self._rx_seq_count - self._rx_received_prior
            self._rx_expected_prior = expected
            self._rx_received_prior = self._rx_seq_count
            lost_interval = expected_interval - received_interval
            fraction = (
                lost_interval / expected_interval if expected_interval > 0 and lost_interval > 0 else 0.0
            )
            dlsr = int((now - self._rx_lsr_at) * 65536) if self._rx_lsr else 0
            report = ReportBlock(
                ssrc=self._rx_ssrc,
                fraction_lost=fraction,
                cumulative_lost=expected - self._rx_seq_count,
                highest_sequence=extended_max,
                jitter=int(self._rx_jitter),
                lsr=self._rx_lsr,
                dlsr=dlsr & 0xFFFFFFFF,
            )
        packet = build_sender_report(
            ssrc=self.ssrc,
            unix_time=time.time(),
            rtp_timestamp=self._next_timestamp(now),
            packet_count=self._packets_sent,
            octet_count=self._payload_bytes_sent,
            cname=self._cname,
            report=report,
        )
        try:
            data = self._tx.protect_rtcp(packet)
        except pylibsrtp.Error:
            return
        self._ice.send_datagram(data)

    # -- state ------------------------------------------------------------------------------------------

    def _unpeer(self) -> None:
        self.peer = None
        self._fwd_resync = True

    def _update_decoding(self) -> None:
        needs = self._recording is not None or self._inband is not None
        if needs and self._rx_decoder is None:
            self._rx_decoder = OpusDecoder()
        elif not needs:
            self._rx_decoder = None

    def _end_playback(self, *, completed: bool) -> None:
        if self._play_frames is None:
            return
        self._play_frames = None
        event = PlaybackFinished(
            self._id, self._play_id, duration_ms=self._play_sent * 20, completed=completed
        )
        self._emit(event)

    def _finish_recording(self) -> None:
        recording = self._recording
        if recording is None:
            return
        self._recording = None
        self._update_decoding()
        try:
            duration_ms, size = recording.recorder.close()
        except OSError as exc:
            logger.warning("media leg %s: closing recording %s failed: %s", self._id, recording.path, exc)
            duration_ms, size = 0, 0
        self._emit(
            RecordingFinished(
                self._id, recording.recording_id, MediaLocator.for_path(recording.path), duration_ms, size
            )
        )

    def _fail_dtmf(self, reason: str) -> None:
        while self._dtmf_queue:
            item = self._dtmf_queue.popleft()
            if item.done is not None and not item.done.done():
                item.done.set_exception(MediaError(f"DTMF not sent: {reason}"))

    def _fail(self, reason: str, *, what: str | None = None, clean: bool = False) -> None:
        """Stop the leg's media; `clean` when the peer ended it on purpose (not a failure)."""
        if self._failed or self._closed:
            return
        self._failed = True
        if not clean:
            self._diag.failure = reason
        if what is not None:
            self._set_state(what, "closed" if clean else "failed")
        self._engine._active.discard(self)
        self._engine._handshaking.discard(self)
        self._end_playback(completed=False)
        self._fail_dtmf(reason)
        logger.info("media leg %s ended: %s", self._id, reason)
        self._emit(MediaClosed(self._id, reason) if clean else MediaFailed(self._id, reason))

    def _set_state(self, what: str, state: str) -> None:
        if what == "ice":
            if self._diag.ice_state == state:
                return
            self._diag.ice_state = state
        else:
            if self._diag.dtls_state == state:
                return
            self._diag.dtls_state = state
        self._diag.state_changes.append((what, state, time.time()))

    def _emit(self, event: MediaEvent) -> None:
        try:
            self._sink(event)
        except Exception:
            logger.exception("media leg %s: event sink failed on %r", self._id, event)
