"""`EmbeddedLeg`: the `MediaLeg` of the embedded engine, as a thin shell around a sans-I/O `RtpSession`.

What is common to every transport profile lives here: the port's playback, DTMF, recording and hold
operations, which only configure the session; the engine-facing hooks the shared ticker calls
(`on_tick`, `on_housekeeping`, `on_rtcp_timer`); and the bridge-facing ones (`set_output`, `deliver_*`).
A subclass per transport (`webrtc.WebRtcLeg`, `plain.RtpLeg`) owns the sockets, SDP offer/answer and
encryption, and calls `rtp_received` / `rtcp_received` with unprotected packets.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from switchboard.errors import MediaError
from switchboard.media.audio import DtmfTone, FrameCache, silence_frame
from switchboard.media.codecs import AudioFormat, silence_payload
from switchboard.media.embedded.dtls import DtlsContext
from switchboard.media.embedded.ice import IPNetwork
from switchboard.media.embedded.ports import PortPool
from switchboard.media.embedded.session import DtmfQueueFull, PacketKind, RtpSession
from switchboard.media.recording import open_recorder
from switchboard.media.rfc4733 import DIGITS, DtmfSender
from switchboard.media.types import (
    DTMF_PAUSES,
    AudioSource,
    Codec,
    DtmfMode,
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
    RecordingFormat,
    check_dtmf,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LegSettings:
    """The engine's configuration, as legs need it."""

    addresses: tuple[str, ...]
    public_address: str | None
    no_media_timeout: float
    ice_timeout: float
    dtls_timeout: float
    remote_networks: tuple[IPNetwork, ...] | None
    relatch_after: float = 1.0


@dataclass(frozen=True, slots=True)
class LegContext:
    """What the engine lends each leg: settings, shared resources, and the hook to forget it on close."""

    settings: LegSettings
    frame_cache: FrameCache
    dtls_context: DtlsContext
    ports: PortPool
    released: Callable[[EmbeddedLeg], None]


class MediaOutput(Protocol):
    """Where a leg's received media goes while it is bridged (`bridge.BridgePath`)."""

    def carry(self, packet: bytes, kind: PacketKind, now: float) -> None: ...

    def key(self, event: DtmfReceived) -> None: ...


class EmbeddedLeg(abc.ABC):
    """`MediaLeg` of the embedded engine; see the module docstring."""

    hold_silence = False
    """Whether a held leg keeps sending silence (plain RTP does: NAT bindings and far-end timers)."""

    def __init__(self, context: LegContext, leg_id: str, sink: MediaEventSink, spec: LegSpec) -> None:
        self._context = context
        self._id = leg_id
        self._sink = sink
        self._spec = spec
        self._diag = MediaDiagnostics()
        self.session = RtpSession(
            leg_id,
            ssrc=secrets.randbits(32) or 1,
            cname=secrets.token_hex(8),
            sequence=secrets.randbits(16),
            timestamp=secrets.randbits(32),
        )
        self.session.hold_silence = self.hold_silence
        self._output: MediaOutput | None = None
        self._inband_capture = False
        """`enable_inband_dtmf`: the owner wants in-band keys reported."""
        self._inband_bridge = False
        """A bridge needs this leg's in-band keys to send them on as RFC 4733 events."""
        self._keys_dropped = 0
        """Keys from a bridged leg dropped because too many were waiting to be sent."""
        self._closed = False
        self._failed = False
        self._media_up = False
        self._ticking = False
        """Whether the ticker sends for this leg (once the transport can carry media)."""

    # -- MediaLeg ---------------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def spec(self) -> LegSpec:
        return self._spec

    @abc.abstractmethod
    async def answer(self, remote_offer: str) -> str: ...

    @abc.abstractmethod
    async def offer(self) -> str: ...

    @abc.abstractmethod
    async def accept_answer(self, remote_answer: str) -> None: ...

    async def play(self, source: AudioSource, *, loop_count: int = 1, playback_id: str) -> None:
        self._check_open("play")
        frames = await self._context.frame_cache.frames_async(source, self._codec)
        if self._closed:
            return
        self.session.play(frames, loop_count, playback_id)
        self._flush()

    async def stop_play(self) -> None:
        self.session.end_playback(completed=False)
        self._flush()

    async def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        self._check_open("send DTMF")
        check_dtmf(digits)
        lead_ms, keys = _keys_and_pauses(digits)
        last = len(keys) - 1
        tones: list[Sequence[bytes]] = []
        if not self._sends_rfc4733:
            for index, (digit, pause_ms) in enumerate(keys):
                tone = DtmfTone(digit, duration_ms, (0 if index == last else gap_ms) + pause_ms)
                tones.append(await self._context.frame_cache.frames_async(tone, self._codec))
        out = self.session.dtmf_out
        needed = len(keys) + (1 if lead_ms else 0)
        if needed > out.room:
            raise DtmfQueueFull(f"cannot send {needed} DTMF keys: {len(out.queue)} are already waiting")
        if lead_ms:
            out.add_events((), round(lead_ms / 20), None)
        if not keys:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def finished(error: Exception | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        for index, (digit, pause_ms) in enumerate(keys):
            callback = finished if index == last else None
            if tones:
                out.add_tones(tones[index], callback)
            else:
                gap_ticks = (0 if index == last else max(1, round(gap_ms / 20))) + round(pause_ms / 20)
                packets = DtmfSender(digit, duration_ms=duration_ms, ptime_ms=20).packets()
                out.add_events(packets, gap_ticks, callback)
        await done

    async def start_recording(self, target: MediaLocator, *, fmt: RecordingFormat, recording_id: str) -> None:
        self._check_open("record")
        self._finish_recording()
        self.session.start_recording(open_recorder(target.path, fmt), recording_id)

    async def stop_recording(self) -> None:
        self._finish_recording()
        self._flush()

    def enable_inband_dtmf(self, enabled: bool) -> None:
        self._inband_capture = enabled
        self._update_inband()

    def set_sending(self, enabled: bool) -> None:
        self.session.sending = enabled

    def diagnostics(self) -> MediaDiagnostics:
        d = self._diag
        stats = self.session.stats
        audio = self.session.audio
        per_ms = (audio.clock_rate if audio is not None else 48000) / 1000.0
        d.packets_sent = stats.packets_sent
        d.packets_received = stats.packets_received
        d.bytes_sent, d.bytes_received = self._transport_bytes()
        d.packets_lost = stats.packets_lost
        if d.packets_lost is not None:
            d.local_jitter_ms = round(stats.jitter / per_ms, 3)
        d.remote_fraction_lost = stats.remote_fraction_lost
        if stats.remote_jitter is not None:
            d.remote_jitter_ms = round(stats.remote_jitter / per_ms, 3)
        d.selected_pair = self._selected_pair() or d.selected_pair
        if audio is not None:
            d.codec = audio.rtpmap.split(" ", 1)[1]
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
        self._ticking = False
        self._context.released(self)
        self.session.end_playback(completed=False)
        self.session.dtmf_out.fail("leg closed")
        self._finish_recording()
        self._flush()
        await self._close_transport()

    # -- for the engine's ticker ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def on_tick(self, now: float) -> None:
        """Every 20 ms: transport timers, then what the session sends now."""
        self._transport_tick(now)
        if not self._ticking:
            return
        packet = self.session.tick(now)
        if packet is not None:
            self._send_rtp(packet)
        if self.session.events:
            self._flush()

    def on_housekeeping(self, now: float) -> None:
        """About once a second: the timeouts that fail a leg."""
        if self._failed or self._closed:
            return
        reason = self._transport_check(now)
        if reason is not None:
            self.fail(*reason)

    def on_rtcp_timer(self, now: float, unix_time: float) -> None:
        if self._ticking and not self._failed:
            self._send_rtcp(self.session.rtcp_report(now, unix_time))

    def crash(self, exc: Exception) -> None:
        logger.exception("media leg %s: internal error", self._id, exc_info=exc)
        self.fail(f"internal media error: {type(exc).__name__}: {exc}")

    # -- for bridges and mixers -------------------------------------------------------------------------

    @property
    def format(self) -> AudioFormat | None:
        """The negotiated audio codec (None before negotiation)."""
        return self.session.audio

    @property
    def takes_rfc4733(self) -> bool:
        """Whether keys reach this leg's peer as RFC 4733 events (else as tones in the audio)."""
        return self._sends_rfc4733

    @property
    def frames_decoded(self) -> int:
        return self.session.decoded_frames

    def set_output(self, output: MediaOutput | None) -> None:
        self._output = output

    def set_fed(self, fed: bool) -> None:
        self.session.fed = fed
        self.session.stream.resync()

    def deliver_forward(self, packet: bytes, now: float, kind: PacketKind) -> None:
        out = self.session.forward(packet, now, kind)
        if out is not None:
            self._send_rtp(out)

    def deliver_frame(self, payload: bytes, now: float) -> None:
        out = self.session.feed(payload, now)
        if out is not None:
            self._send_rtp(out)

    def deliver_event(self, packet: bytes, now: float) -> None:
        out = self.session.relay_event(packet, now)
        if out is not None:
            self._send_rtp(out)

    def deliver_key(self, digit: str, duration_ms: int) -> None:
        """A key pressed on the other side of a bridge, regenerated here (RFC 4733 or tones)."""
        if self._closed or digit.upper() not in DIGITS:
            return
        duration_ms = max(40, min(duration_ms, 2000))
        if self.session.dtmf_out.room <= 0:
            if not self._keys_dropped:
                logger.warning(
                    "media leg %s: keys from the bridged leg come faster than they go out; dropping some",
                    self._id,
                )
            self._keys_dropped += 1
            return
        if self._sends_rfc4733:
            packets = DtmfSender(digit, duration_ms=duration_ms, ptime_ms=20).packets()
            self.session.dtmf_out.add_events(packets, 2, None)
        else:
            frames = self._context.frame_cache.frames(DtmfTone(digit, duration_ms, 40), self._codec)
            self.session.dtmf_out.add_tones(frames, None)

    def set_bridge_inband_detection(self, enabled: bool) -> None:
        """A bridge to a leg that takes RFC 4733 needs this leg's in-band keys detected."""
        self._inband_bridge = enabled
        self._update_inband()

    # -- for the transport shells -----------------------------------------------------------------------

    def rtp_received(self, packet: bytes, now: float) -> None:
        kind = self.session.receive_rtp(packet, now)
        output = self._output
        if output is not None and kind:
            output.carry(packet, kind, now)
        if self.session.events:
            self._flush()

    def rtcp_received(self, packet: bytes, now: float) -> None:
        self.session.receive_rtcp(packet, now)

    def media_up(self) -> None:
        """The transport carries media (SRTP keys ready, or the first RTP arrived): tell the owner once."""
        if self._media_up or self._failed:
            return
        self._media_up = True
        self._emit(MediaStarted(self._id))

    def fail(self, reason: str, what: str | None = None, clean: bool = False) -> None:
        """Stop the leg's media; `clean` when the peer ended it on purpose (not a failure)."""
        if self._failed or self._closed:
            return
        self._failed = True
        self._ticking = False
        if not clean:
            self._diag.failure = reason
        if what is not None:
            self._set_state(what, "closed" if clean else "failed")
        self.session.end_playback(completed=False)
        self.session.dtmf_out.fail(reason)
        self._flush()
        logger.info("media leg %s ended: %s", self._id, reason)
        self._emit(MediaClosed(self._id, reason) if clean else MediaFailed(self._id, reason))

    # -- transport hooks (subclasses) -------------------------------------------------------------------

    @abc.abstractmethod
    def _send_rtp(self, packet: bytes) -> None: ...

    @abc.abstractmethod
    def _send_rtcp(self, packet: bytes) -> None: ...

    def _transport_tick(self, now: float) -> None:  # noqa: B027 (most transports have no such timer)
        """Transport timers that need 20 ms resolution (DTLS retransmission)."""

    def _transport_check(self, now: float) -> tuple[str, str | None] | None:
        """(reason, component) when the transport must fail the leg."""
        return None

    def _transport_bytes(self) -> tuple[int, int]:
        return 0, 0

    def _selected_pair(self) -> str | None:
        return None

    async def _close_transport(self) -> None:
        return None

    # -- shared helpers ---------------------------------------------------------------------------------

    @property
    def _codec(self) -> Codec:
        audio = self.session.audio
        if audio is not None:
            return audio.codec
        return next(c for c in self._spec.codecs if c is not Codec.TELEPHONE_EVENT)

    @property
    def _sends_rfc4733(self) -> bool:
        return self._spec.dtmf is DtmfMode.RFC4733 and self.session.telephone_event_pt is not None

    @property
    def _audio_codecs(self) -> tuple[Codec, ...]:
        return tuple(c for c in self._spec.codecs if c is not Codec.TELEPHONE_EVENT)

    @property
    def _wants_events(self) -> bool:
        return Codec.TELEPHONE_EVENT in self._spec.codecs

    def _configure(self, audio: AudioFormat, telephone_event_pt: int | None) -> None:
        silence = silence_frame() if audio.codec is Codec.OPUS else silence_payload(audio.codec)
        self.session.configure(audio, telephone_event_pt, silence)
        self._diag.codec = audio.rtpmap.split(" ", 1)[1]
        self._update_inband()

    def _update_inband(self) -> None:
        self.session.set_inband_detection(self._inband_capture or self._inband_bridge)

    def _start_ticking(self) -> None:
        if not self._closed and not self._failed:
            self._ticking = True

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise MediaError(f"cannot {action}: media leg {self._id!r} is closed")

    def _finish_recording(self) -> None:
        finished = self.session.finish_recording()
        if finished is None:
            return
        tap, path = finished
        try:
            duration_ms, size = tap.recorder.close()
        except OSError as exc:
            logger.warning("media leg %s: closing recording %s failed: %s", self._id, path, exc)
            duration_ms, size = 0, 0
        self.session.recording_finished(tap, duration_ms, size)

    def _flush(self) -> None:
        for event in self.session.take_events():
            if isinstance(event, DtmfReceived):
                output = self._output
                if output is not None:
                    output.key(event)
                if event.source is DtmfSource.INBAND and not self._inband_capture:
                    continue
            self._emit(event)

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


def _keys_and_pauses(digits: str) -> tuple[int, list[tuple[str, int]]]:
    """(pause before the first key in ms, [(key, pause after it in ms)]) of a checked `send_dtmf` string."""
    lead_ms = 0
    keys: list[tuple[str, int]] = []
    for char in digits:
        pause = DTMF_PAUSES.get(char)
        if pause is None:
            keys.append((char.upper(), 0))
        elif keys:
            keys[-1] = (keys[-1][0], keys[-1][1] + pause)
        else:
            lead_ms += pause
    return lead_ms, keys
