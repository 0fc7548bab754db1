"""PCM and Opus for the media engine: load files, make tones, encode and decode 20 ms Opus frames, and cache
the encoded frames of prompts (per codec: Opus, or G.711 at 8 kHz).

PCM is always 48 kHz mono int16 (`numpy.ndarray`), the rate of Opus (RFC 7587 §4.1: the RTP clock of Opus is
48000 whatever the audio bandwidth). One RTP packet carries one 20 ms Opus frame (RFC 7587 §4.2, `ptime` 20).
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from switchboard.errors import MediaError
from switchboard.media.g711 import alaw_encode, ulaw_encode
from switchboard.media.resample import downsample
from switchboard.media.types import AudioSource, Codec, MediaLocator, Tone

SAMPLE_RATE = 48000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 960

Pcm = npt.NDArray[np.int16]


def load_pcm(path: Path) -> Pcm:
    """Decode any audio file FFmpeg reads (WAV, MP3, Ogg, ...) to 48 kHz mono int16 samples.

    Raises `MediaError` when the file is missing or cannot be decoded.
    """
    chunks: list[Pcm] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except (OSError, av.FFmpegError) as exc:
        raise MediaError(f"cannot decode audio file {path}: {exc}") from exc
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(chunks).astype(np.int16, copy=False)


def tone_pcm(frequency_hz: float, duration_ms: int, level_dbfs: float = -12.0) -> Pcm:
    """A sine tone; `level_dbfs` is its peak relative to full scale (0 dBFS = a full-scale sine)."""
    count = SAMPLE_RATE * duration_ms // 1000
    amplitude = 32767.0 * 10.0 ** (level_dbfs / 20.0)
    phase = (2.0 * np.pi * frequency_hz / SAMPLE_RATE) * np.arange(count)
    samples: Pcm = np.round(amplitude * np.sin(phase)).astype(np.int16)
    return samples


class OpusEncoder:
    """Encodes mono PCM (48 kHz, or 8/16/24 kHz for narrow sources) to 20 ms Opus frames with libopus (PyAV).

    Defaults follow a voice call: `application=voip`, 32 kbit/s. One packet comes out per 20 ms frame put in
    (libopus' 6.5 ms look-ahead is not compensated: RTP has no pre-skip, RFC 7587 §4.2). Cost on the reference
    2-core machine is 75-230 µs per frame at complexity 10 (~90 µs at 1); lower it for live encoding at scale.
    """

    def __init__(self, bitrate: int = 32000, complexity: int = 10, sample_rate: int = SAMPLE_RATE) -> None:
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = sample_rate
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.options = {
            "application": "voip",
            "frame_duration": str(FRAME_MS),
            "compression_level": str(complexity),
        }
        ctx.open()
        self._ctx = ctx
        self._rate = sample_rate
        self._frame = sample_rate * FRAME_MS // 1000
        self._pts = 0
        self._pending = np.zeros(self._frame, dtype=np.int16)

    def encode(self, pcm: Pcm) -> list[bytes]:
        """Encode `pcm` (any length); the last partial frame is padded with silence."""
        samples = np.asarray(pcm, dtype=np.int16).reshape(-1)
        packets: list[bytes] = []
        frame = self._frame
        for start in range(0, samples.size, frame):
            chunk = samples[start : start + frame]
            if chunk.size < frame:
                self._pending[: chunk.size] = chunk
                self._pending[chunk.size :] = 0
                chunk = self._pending
            packets.extend(self._encode_frame(chunk))
        return packets

    def flush(self) -> list[bytes]:
        """Drain the encoder (its look-ahead) so a clip ends exactly; the encoder is done after this."""
        return [bytes(packet) for packet in self._ctx.encode(None)]

    def _encode_frame(self, chunk: Pcm) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += self._frame
        return [bytes(packet) for packet in self._ctx.encode(frame)]


class OpusDecoder:
    """Decodes one RTP Opus payload at a time to 48 kHz mono int16 (stereo packets are downmixed by libopus).

    Chromium and WhatsApp sometimes set the TOC stereo bit (RFC 6716 §3.1) on a mono call; RFC 7587 §6.1
    (`stereo`) has every receiver decode such packets, and the decoder is opened mono so libopus downmixes.
    ~30-40 µs per 20 ms frame.
    """

    def __init__(self) -> None:
        ctx = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.open()
        self._ctx = ctx

    def decode(self, payload: bytes) -> Pcm:
        """Samples of one payload (960 for a 20 ms frame); `MediaError` when libopus rejects the payload."""
        if not payload:
            # An empty packet would put FFmpeg's decoder in draining mode for good.
            raise MediaError("empty Opus payload")
        try:
            frames = self._ctx.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            raise MediaError(f"invalid Opus payload ({len(payload)} bytes): {exc}") from exc
        if len(frames) == 1:
            return _mono_s16(frames[0])
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([_mono_s16(frame) for frame in frames])


def _mono_s16(frame: av.AudioFrame) -> Pcm:
    array = frame.to_ndarray()
    if array.dtype == np.int16 and array.shape[0] == 1:
        return array.reshape(-1).astype(np.int16, copy=False)
    # Not expected with a mono s16 decoder; convert defensively (planar float or interleaved stereo).
    if array.dtype.kind == "f":
        array = np.clip(array * 32768.0, -32768, 32767)
    if frame.format.is_planar:
        mono = array.mean(axis=0)
    else:
        mono = array.reshape(-1, len(frame.layout.channels)).mean(axis=1)
    samples: Pcm = np.round(mono).astype(np.int16)
    return samples


OPUS_SILENCE = b"\xf8\xff\xfe"
"""A widely used 3-byte 20 ms fullband CELT frame (TOC config 31, RFC 6716 §3.1) that decodes to digital
silence; libopus spends ~35 bytes on encoded zeros at 32 kbit/s."""


@functools.cache
def silence_frame() -> bytes:
    """One 20 ms Opus frame of silence, e.g. to keep RTP flowing between prompts (checked once to decode to
    960 zero samples)."""
    decoded = OpusDecoder().decode(OPUS_SILENCE)
    if decoded.size != FRAME_SAMPLES or decoded.any():
        return OpusEncoder().encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))[0]
    return OPUS_SILENCE


@dataclass(frozen=True, slots=True)
class DtmfTone:
    """One key as in-band tones (ITU-T Q.23: its row and column frequencies) followed by `gap_ms` of
    silence, for legs that carry keys in the audio."""

    digit: str
    duration_ms: int = 100
    gap_ms: int = 60
    level_dbfs: float = -10.0
    """Per tone; Q.24 receivers take -25 dBm0 and up, twist 0 dB here."""


Content = AudioSource | DtmfTone

DTMF_FREQUENCIES = {
    key: (row, column)
    for row, keys in zip((697.0, 770.0, 852.0, 941.0), ("123A", "456B", "789C", "*0#D"), strict=True)
    for column, key in zip((1209.0, 1336.0, 1477.0, 1633.0), keys, strict=True)
}


def dtmf_pcm(tone: DtmfTone) -> Pcm:
    low, high = DTMF_FREQUENCIES[tone.digit.upper()]
    count = SAMPLE_RATE * tone.duration_ms // 1000
    amplitude = 32767.0 * 10.0 ** (tone.level_dbfs / 20.0)
    t = np.arange(count) / SAMPLE_RATE
    samples = amplitude * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    gap = np.zeros(SAMPLE_RATE * tone.gap_ms // 1000)
    out: Pcm = np.round(np.concatenate([samples, gap])).astype(np.int16)
    return out


def source_pcm(source: Content) -> Pcm:
    if isinstance(source, MediaLocator):
        return load_pcm(source.path)
    if isinstance(source, DtmfTone):
        return dtmf_pcm(source)
    return tone_pcm(source.frequency_hz, source.duration_ms, source.level_dbfs)


def encode_source(source: Content, codec: Codec = Codec.OPUS) -> tuple[bytes, ...]:
    """The 20 ms frames of a file or tone in `codec` (blocking: decodes and encodes the whole source)."""
    pcm = source_pcm(source)
    if codec is Codec.OPUS:
        return tuple(OpusEncoder().encode(pcm))
    narrow = downsample(pcm)
    narrow = np.concatenate([narrow, np.zeros(-narrow.size % 160, dtype=np.int16)])
    encode = ulaw_encode if codec is Codec.PCMU else alaw_encode
    payload = encode(narrow)
    return tuple(payload[start : start + 160] for start in range(0, len(payload), 160))


class FrameCache:
    """LRU cache of encoded prompt frames, so a prompt played to many calls is encoded once.

    Files are keyed by (resolved path, mtime, size), so an edited file is re-encoded; tones by their
    parameters. Use it from one thread (the event loop); `frames_async` encodes off the loop on a miss and
    shares one encode between concurrent callers asking for the same source.
    """

    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()
        self._in_flight: dict[Hashable, asyncio.Future[tuple[bytes, ...]]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def frames(self, source: Content, codec: Codec = Codec.OPUS) -> Sequence[bytes]:
        """The frames of `source` in `codec`, encoding now (blocking) on a miss."""
        key = (codec, self._key(source))
        cached = self._lookup(key)
        if cached is not None:
            return cached
        frames = encode_source(source, codec)
        self._store(key, frames)
        return frames

    async def frames_async(self, source: Content, codec: Codec = Codec.OPUS) -> Sequence[bytes]:
        """The frames of `source` in `codec`, encoding in a worker thread on a miss."""
        key = (codec, self._key(source))
        cached = self._lookup(key)
        if cached is not None:
            return cached
        pending = self._in_flight.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(None, encode_source, source, codec)
            self._in_flight[key] = pending
            pending.add_done_callback(functools.partial(self._encoded, key))
        # Shielded: a caller that is cancelled does not cancel the encode others wait for.
        return await asyncio.shield(pending)

    def _encoded(self, key: Hashable, future: asyncio.Future[tuple[bytes, ...]]) -> None:
        del self._in_flight[key]
        if not future.cancelled() and future.exception() is None:
            self._store(key, future.result())

    def _key(self, source: Content) -> Hashable:
        if isinstance(source, Tone):
            return ("tone", source.frequency_hz, source.duration_ms, source.level_dbfs)
        if isinstance(source, DtmfTone):
            return source
        path = source.path.resolve()
        try:
            stat = path.stat()
        except OSError as exc:
            raise MediaError(f"cannot read audio file {source.path}: {exc}") from exc
        return ("file", str(path), stat.st_mtime_ns, stat.st_size)

    def _lookup(self, key: Hashable) -> tuple[bytes, ...] | None:
        frames = self._entries.get(key)
        if frames is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return frames

    def _store(self, key: Hashable, frames: tuple[bytes, ...]) -> None:
        self._entries[key] = frames
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
