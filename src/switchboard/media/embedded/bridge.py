"""Bridges between two legs: each direction is a `BridgePath` from what one leg receives to what the
other sends.

With the same codec on both legs a path forwards packets as they are (only the RTP header is rewritten
into the target's stream); with different codecs, and only then, it subscribes to the source's decoded
audio and encodes it for the target (decode → resample → encode, 20 ms frames). Keys cross as RFC 4733
events when the target takes them (forwarded, or re-timestamped into its timeline when transcoding), and
as tones otherwise; in-band keys from a source leg in INBAND mode are detected and sent on as events.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from switchboard.media.codecs import PCM_RATES, Encoder, PcmConverter, encoder_for
from switchboard.media.embedded.leg import EmbeddedLeg
from switchboard.media.embedded.session import PacketKind
from switchboard.media.types import Codec, DtmfMode, DtmfReceived, DtmfSource

Pcm = npt.NDArray[np.int16]

_MAX_PENDING_FRAMES = 5


class Transcoder:
    """Decoded audio of one codec in, 20 ms frames of another out to `target`."""

    def __init__(self, source: Codec, target_codec: Codec, target: EmbeddedLeg) -> None:
        self.pair = (source, target_codec)
        self.narrowband = target_codec is not Codec.OPUS
        """The target is G.711: 8 kHz of the source's audio is all it can carry."""
        self._encode_rate = PCM_RATES[source] if target_codec is Codec.OPUS else 8000
        self._converter = PcmConverter(self._encode_rate, self._encode_rate)
        self._encoder: Encoder = encoder_for(target_codec, input_rate=self._encode_rate)
        self._target = target
        self._pending: Pcm = np.zeros(0, dtype=np.int16)
        self.frames_encoded = 0

    def __call__(self, pcm: Pcm, rate: int, now: float) -> None:
        if rate != self._converter.from_rate:
            self._converter = PcmConverter(rate, self._encode_rate)
        samples = self._converter.convert(pcm)
        if self._pending.size:
            samples = np.concatenate([self._pending, samples])
        frame = self._encoder.frame_samples
        position = 0
        while samples.size - position >= frame:
            payload = self._encoder.encode_frame(samples[position : position + frame])
            position += frame
            self.frames_encoded += 1
            self._target.deliver_frame(payload, now)
        rest = samples[position:]
        self._pending = rest[-frame * _MAX_PENDING_FRAMES :] if rest.size else rest


class BridgePath:
    """One direction of a bridge."""

    def __init__(self, source: EmbeddedLeg, target: EmbeddedLeg) -> None:
        self.source = source
        self.target = target
        self.transcoder: Transcoder | None = None

    def open(self) -> None:
        self.source.set_output(self)
        self.target.set_fed(True)
        self._plan()
        inband_keys = self.source.spec.dtmf is DtmfMode.INBAND and self.target.takes_rfc4733
        self.source.set_bridge_inband_detection(inband_keys)

    def close(self) -> None:
        self.source.set_output(None)
        self.target.set_fed(False)
        self.source.set_bridge_inband_detection(False)
        self._stop_transcoding()

    def carry(self, packet: bytes, kind: PacketKind, now: float) -> None:
        source, target = self.source.format, self.target.format
        if source is None or target is None:
            return
        if kind is PacketKind.AUDIO:
            if source.codec is target.codec:
                if self.transcoder is not None:
                    self._stop_transcoding()
                self.target.deliver_forward(packet, now, kind)
            elif self.transcoder is None or self.transcoder.pair != (source.codec, target.codec):
                self._plan()  # from the next packet on (this one was not decoded for us)
            return
        if self.target.takes_rfc4733:
            if source.codec is target.codec:
                self.target.deliver_forward(packet, now, kind)
            else:
                # The target's audio is ours (transcoded), so the event is placed in its timeline.
                self.target.deliver_event(packet, now)

    def key(self, event: DtmfReceived) -> None:
        """A key the source leg decoded: regenerate it where the target cannot get it as it came."""
        takes_events = self.target.takes_rfc4733
        if (event.source is DtmfSource.RFC4733 and not takes_events) or (
            event.source is DtmfSource.INBAND and takes_events
        ):
            self.target.deliver_key(event.digit, event.duration_ms)

    def _plan(self) -> None:
        source, target = self.source.format, self.target.format
        if source is None or target is None or source.codec is target.codec:
            self._stop_transcoding()
            return
        if self.transcoder is not None and self.transcoder.pair == (source.codec, target.codec):
            return
        self._stop_transcoding()
        self.transcoder = Transcoder(source.codec, target.codec, self.target)
        self.source.session.add_pcm_tap(self.transcoder, narrowband=self.transcoder.narrowband)

    def _stop_transcoding(self) -> None:
        if self.transcoder is not None:
            self.source.session.remove_pcm_tap(self.transcoder)
            self.transcoder = None


class Bridge:
    """Two legs hearing each other."""

    def __init__(self, a: EmbeddedLeg, b: EmbeddedLeg) -> None:
        self.a = a
        self.b = b
        self.paths = (BridgePath(a, b), BridgePath(b, a))

    def open(self) -> None:
        for path in self.paths:
            path.open()

    def close(self) -> None:
        for path in self.paths:
            path.close()

    def other(self, leg: EmbeddedLeg) -> EmbeddedLeg:
        return self.b if leg is self.a else self.a
