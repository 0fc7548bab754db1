"""Audio formats of RTP streams and the codec stages that turn payloads into PCM and back.

A stage works at its codec's own rate: Opus decodes to 48 kHz, G.711 to 8 kHz. Live Opus coding calls
libopus directly when it loads (`libopus`), PyAV otherwise. `PcmConverter` moves PCM between the two
rates, so decoding, resampling and encoding are separate steps that only transcoding, recording, mixing and
in-band DTMF pay for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from switchboard.media import libopus
from switchboard.media.audio import OpusDecoder, OpusEncoder
from switchboard.media.g711 import (
    ALAW_SILENCE,
    ULAW_SILENCE,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from switchboard.media.libopus import NativeOpusDecoder, NativeOpusEncoder
from switchboard.media.resample import Downsampler, Upsampler
from switchboard.media.types import Codec

Pcm = npt.NDArray[np.int16]

STATIC_PAYLOAD_TYPES = {Codec.PCMU: 0, Codec.PCMA: 8}
"""RFC 3551 §6 static payload types."""
DYNAMIC_PAYLOAD_TYPES = {Codec.OPUS: 111, Codec.TELEPHONE_EVENT: 101}
"""What we offer for the dynamic ones (the answerer's numbers are used when we answer)."""


def default_payload_type(codec: Codec) -> int:
    """The payload type we use for `codec` in our offers."""
    if codec in STATIC_PAYLOAD_TYPES:
        return STATIC_PAYLOAD_TYPES[codec]
    return DYNAMIC_PAYLOAD_TYPES[codec]


CLOCK_RATES = {Codec.OPUS: 48000, Codec.PCMU: 8000, Codec.PCMA: 8000, Codec.TELEPHONE_EVENT: 8000}
"""RTP clock rates (RFC 7587 §4.1 for Opus, RFC 3551 §4.5.14 for G.711, RFC 4733 for telephone-event/8000)."""

PCM_RATES = {Codec.OPUS: 48000, Codec.PCMU: 8000, Codec.PCMA: 8000}
"""The rate a codec stage decodes to and encodes from."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """The audio of one direction of a leg, as negotiated: codec and payload type."""

    codec: Codec
    payload_type: int

    @property
    def clock_rate(self) -> int:
        return CLOCK_RATES[self.codec]

    @property
    def samples_per_frame(self) -> int:
        """RTP timestamp units in 20 ms."""
        return CLOCK_RATES[self.codec] // 50

    @property
    def rtpmap(self) -> str:
        if self.codec is Codec.OPUS:
            return f"{self.payload_type} opus/48000/2"
        return f"{self.payload_type} {self.codec.value}/8000"


class Decoder(Protocol):
    rate: int

    def decode(self, payload: bytes) -> Pcm:
        """Samples at `rate`; `MediaError` when the payload is not valid for the codec."""


class Encoder(Protocol):
    rate: int
    frame_samples: int

    def encode_frame(self, pcm: Pcm) -> bytes:
        """One 20 ms frame (`frame_samples` samples at `rate`) to one payload."""


class _G711Decoder:
    def __init__(self, codec: Codec) -> None:
        self.rate = 8000
        self.decode = ulaw_decode if codec is Codec.PCMU else alaw_decode


class _G711Encoder:
    def __init__(self, codec: Codec) -> None:
        self.rate = 8000
        self.frame_samples = 160
        self._encode = ulaw_encode if codec is Codec.PCMU else alaw_encode

    def encode_frame(self, pcm: Pcm) -> bytes:
        return self._encode(pcm)


class _PyAvOpusDecoder:
    def __init__(self) -> None:
        self.rate = 48000
        self._decoder = OpusDecoder()

    def decode(self, payload: bytes) -> Pcm:
        return self._decoder.decode(payload)


class _PyAvOpusEncoder:
    def __init__(self, rate: int, complexity: int) -> None:
        self.rate = rate
        self.frame_samples = rate // 50
        self._encoder = OpusEncoder(complexity=complexity, sample_rate=rate)

    def encode_frame(self, pcm: Pcm) -> bytes:
        packets = self._encoder.encode(pcm)
        return packets[0] if packets else b""


def decoder_for(codec: Codec, *, narrowband: bool = False) -> Decoder:
    """A decoder for `codec`; `narrowband` asks Opus for 8 kHz output (libopus resamples as it decodes,
    cheaper than decoding at 48 kHz and decimating), for consumers that end up at 8 kHz anyway."""
    if codec is Codec.OPUS:
        lib = libopus.load()
        if lib is None:
            return _PyAvOpusDecoder()
        return NativeOpusDecoder(lib, 8000 if narrowband else 48000)
    return _G711Decoder(codec)


def encoder_for(codec: Codec, *, input_rate: int | None = None, complexity: int = 1) -> Encoder:
    """An encoder for `codec`; Opus takes `input_rate` (8000 or 48000) directly, so audio that came from a
    narrowband leg is not upsampled only to be coded as narrowband again."""
    if codec is Codec.OPUS:
        lib = libopus.load()
        rate = input_rate or 48000
        if lib is not None:
            return NativeOpusEncoder(lib, rate, complexity=complexity)
        return _PyAvOpusEncoder(rate, complexity)
    return _G711Encoder(codec)


def silence_payload(codec: Codec) -> bytes:
    """20 ms of silence for G.711 (Opus silence is `audio.silence_frame()`)."""
    return bytes([ULAW_SILENCE if codec is Codec.PCMU else ALAW_SILENCE]) * 160


class PcmConverter:
    """PCM from one rate (8000 or 48000) to another, keeping filter state across calls."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stage: Upsampler | Downsampler | None = None
        if from_rate == 8000 and to_rate == 48000:
            self._stage = Upsampler()
        elif from_rate == 48000 and to_rate == 8000:
            self._stage = Downsampler()
        elif from_rate != to_rate:
            raise ValueError(f"no resampler from {from_rate} Hz to {to_rate} Hz")

    def convert(self, pcm: Pcm) -> Pcm:
        return pcm if self._stage is None else self._stage.process(pcm)
