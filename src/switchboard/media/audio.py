"""PCM and Opus for the media engine: load files, make tones, encode and decode 20 ms Opus frames, and cache
the encoded frames of prompts (per codec: Opus, or G.711 at 8 kHz).

PCM is always 48 kHz mono int16 (`numpy.ndarray`), the rate of Opus (RFC 7587 §4.1: the RTP clock of Opus is
48000 whatever the audio bandwidth). One RTP packet carries one 20 ms Opus frame (RFC 7587 §4.2, `ptime` 20).

A prompt is decoded and encoded as a stream, a few frames at a time, and stops at `max_seconds`: only its
first `max_seconds` are played (with a warning in the log), so neither a long file nor a file that inflates
(a compressed hour of silence) costs more than that. The container is chosen by the file's content, never
by its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import signal
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import numpy.typing as npt

from switchboard.errors import MediaError
from switchboard.media.g711 import alaw_encode, ulaw_encode
from switchboard.media.resample import FACTOR, TAPS, Downsampler
from switchboard.media.types import AudioSource, Codec, MediaLocator, Tone, UnplayableAudio

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 960

Pcm = npt.NDArray[np.int16]

MAX_PROMPT_SECONDS = 600.0
"""The longest audio decoded for one play (`[media] max_prompt_seconds`); the rest of a file is not played."""

DECODE_WORKERS = max(1, min(2, (os.cpu_count() or 1) - 1))
"""Processes that decode and encode audio files (per `FrameCache`); a burst of distinct prompts waits its
turn. One core is left to the event loop."""


def sniff_container(head: bytes) -> str | None:
    """The FFmpeg demuxer of the audio container whose signature starts `head` (a file's first bytes, 12 or
    more): "wav", "ogg", "flac", "mp3", "aac" or "mp4"; None for anything else."""
    if head[8:12] == b"WAVE" and head[:4] in (b"RIFF", b"RF64"):
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3":
        return "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS: 12 sync bits, layer 00 (ISO/IEC 13818-7 §6.2)
            return "aac"
        # MPEG audio frame header: 11 sync bits, version not "reserved" (01), layer not "reserved" (00).
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x18 != 0x08 and head[1] & 0x06:
            return "mp3"
    return None


class _Unnamed:
    """A file handed to FFmpeg without its name: FFmpeg then probes the content alone, never the extension,
    and its errors cannot quote the path."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def _ffmpeg_reason(exc: av.FFmpegError) -> str:
    return str(exc.strerror or type(exc).__name__)


def decode_pcm(
    path: Path, *, max_seconds: float | None = None, truncated: Callable[[], None] | None = None
) -> Iterator[Pcm]:
    """Decode an audio file FFmpeg reads (WAV, MP3, Ogg, FLAC, MP4, ...) to 48 kHz mono int16 chunks, as a
    stream that ends after `max_seconds` of audio (calling `truncated` if the file had more).

    The container is sniffed from the content (`sniff_container`); other content is left to FFmpeg's
    probe, which is not shown the file's name. Raises `MediaError` when the file cannot be read and
    `UnplayableAudio` when it is not decodable audio; neither message quotes the file's directory.
    """
    limit = None if max_seconds is None else max(0, round(max_seconds * SAMPLE_RATE))
    produced = 0
    try:
        with path.open("rb") as raw:
            demuxer = sniff_container(raw.read(16))
            raw.seek(0)
            try:
                container = av.open(_Unnamed(raw), "r", format=demuxer)
            except av.FFmpegError as exc:
                raise UnplayableAudio(f"{path.name} is not audio ({_ffmpeg_reason(exc)})") from None
            with container:
                if not container.streams.audio:
                    raise UnplayableAudio(f"{path.name} has no audio stream")
                resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
                frames = container.decode(container.streams.audio[0])
                for out in _resampled(resampler, frames):
                    pcm = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    if limit is not None and produced + pcm.size > limit:
                        if limit > produced:
                            yield pcm[: limit - produced]
                        if truncated is not None:
                            truncated()
                        return
                    produced += pcm.size
                    yield pcm
    except OSError as exc:
        raise MediaError(f"cannot read audio file {path.name}: {exc.strerror or exc}") from None
    except av.FFmpegError as exc:
        raise UnplayableAudio(f"cannot decode {path.name}: {_ffmpeg_reason(exc)}") from None


def _resampled(resampler: av.AudioResampler, frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    for frame in frames:
        yield from resampler.resample(frame)
    yield from resampler.resample(None)


def load_pcm(path: Path, *, max_seconds: float | None = None) -> Pcm:
    """The whole of `decode_pcm` (up to `max_seconds`) as one array."""
    chunks = list(decode_pcm(path, max_seconds=max_seconds))
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(chunks).astype(np.int16, copy=False)


@dataclass(frozen=True, slots=True)
class AudioProbe:
    """What `probe_audio` found: the container (a `sniff_container` name) and the duration, if known."""

    container: str
    duration_s: float | None


def probe_audio(path: Path) -> AudioProbe:
    """Check that `path` holds audio FFmpeg decodes (its first frames), judged by content only.

    Blocking (opens the file and decodes a little). Raises `UnplayableAudio` when it does not, with a
    message that names no path; `MediaError` when the file cannot be read.
    """
    try:
        with path.open("rb") as raw:
            demuxer = sniff_container(raw.read(16))
            if demuxer is None:
                raise UnplayableAudio("not a WAV, Ogg, FLAC, MP3, AAC or MP4 audio file")
            raw.seek(0)
            try:
                container = av.open(_Unnamed(raw), "r", format=demuxer)
            except av.FFmpegError as exc:
                raise UnplayableAudio(f"not a readable {demuxer} file ({_ffmpeg_reason(exc)})") from None
            with container:
                if not container.streams.audio:
                    raise UnplayableAudio(f"the {demuxer} file has no audio stream")
                stream = container.streams.audio[0]
                decoded = next(iter(container.decode(stream)), None)
                if decoded is None:
                    raise UnplayableAudio(f"the {demuxer} file holds no audio")
                duration: float | None = None
                if stream.duration is not None and stream.time_base is not None:
                    duration = float(stream.duration * stream.time_base)
                elif container.duration is not None:
                    duration = container.duration / av.time_base
                return AudioProbe(demuxer, duration)
    except OSError as exc:
        raise MediaError(f"cannot read audio file {path.name}: {exc.strerror or exc}") from None
    except av.FFmpegError as exc:
        raise UnplayableAudio(f"not decodable audio ({_ffmpeg_reason(exc)})") from None


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


def source_chunks(
    source: Content, *, max_seconds: float | None, truncated: Callable[[], None] | None = None
) -> Iterator[Pcm]:
    """The PCM of a file or tone as a stream of chunks, ending after `max_seconds` of it (calling
    `truncated` if the source had more)."""
    if isinstance(source, MediaLocator):
        yield from decode_pcm(source.path, max_seconds=max_seconds, truncated=truncated)
    elif isinstance(source, DtmfTone):
        yield dtmf_pcm(source)
    else:
        duration_ms = source.duration_ms
        if max_seconds is not None and duration_ms > max_seconds * 1000:
            duration_ms = round(max_seconds * 1000)
            if truncated is not None:
                truncated()
        yield from _tone_chunks(source.frequency_hz, duration_ms, source.level_dbfs)


def _tone_chunks(frequency_hz: float, duration_ms: int, level_dbfs: float) -> Iterator[Pcm]:
    """`tone_pcm`, one second at a time (the same samples)."""
    count = SAMPLE_RATE * duration_ms // 1000
    amplitude = 32767.0 * 10.0 ** (level_dbfs / 20.0)
    step = 2.0 * np.pi * frequency_hz / SAMPLE_RATE
    for start in range(0, count, SAMPLE_RATE):
        phase = step * np.arange(start, min(count, start + SAMPLE_RATE), dtype=np.float64)
        samples: Pcm = np.round(amplitude * np.sin(phase)).astype(np.int16)
        yield samples


def _opus_frames(chunks: Iterator[Pcm]) -> Iterator[bytes]:
    encoder = OpusEncoder()
    pending = np.zeros(0, dtype=np.int16)
    for chunk in chunks:
        if pending.size:
            chunk = np.concatenate([pending, chunk])
        whole = chunk.size - chunk.size % FRAME_SAMPLES
        yield from encoder.encode(chunk[:whole])
        pending = chunk[whole:]
    if pending.size:
        yield from encoder.encode(pending)  # padded with silence


_G711_FRAME = 160


def _g711_frames(chunks: Iterator[Pcm], codec: Codec) -> Iterator[bytes]:
    """48 kHz chunks to 8 kHz G.711 frames with the same samples as `resample.downsample` of the whole clip
    (the filter's delay dropped at the start and its tail flushed at the end); the last frame is padded
    with silence."""
    encode = ulaw_encode if codec is Codec.PCMU else alaw_encode
    downsampler = Downsampler()
    skip = TAPS // (2 * FACTOR)
    taken = 0
    emitted = 0
    pending = np.zeros(0, dtype=np.int16)

    def frames(narrow: Pcm) -> list[bytes]:
        nonlocal skip, emitted, pending
        dropped = min(skip, narrow.size)
        skip -= dropped
        narrow = narrow[dropped:]
        emitted += narrow.size
        data = np.concatenate([pending, narrow]) if pending.size else narrow
        whole = data.size - data.size % _G711_FRAME
        payload = encode(data[:whole])
        pending = data[whole:]
        return [payload[start : start + _G711_FRAME] for start in range(0, whole, _G711_FRAME)]

    for chunk in chunks:
        taken += chunk.size
        yield from frames(downsampler.process(chunk))
    tail = downsampler.process(np.zeros(TAPS, dtype=np.int16))
    wanted = -(-taken // FACTOR)
    yield from frames(tail[: max(0, wanted - emitted + skip)])
    if pending.size:
        yield encode(np.concatenate([pending, np.zeros(_G711_FRAME - pending.size, dtype=np.int16)]))


@dataclass(frozen=True, slots=True)
class Prompt:
    """The encoded frames of a source, and whether it was cut at `max_seconds`."""

    frames: tuple[bytes, ...]
    truncated: bool = False


def encode_prompt(source: Content, codec: Codec, max_seconds: float | None) -> Prompt:
    """The 20 ms frames of a file or tone in `codec`, of at most `max_seconds` of its audio.

    Blocking: decodes and encodes as it reads, so only the frames and one chunk of PCM are held at a time.
    A plain function of picklable values, for a worker process.
    """
    cut = False

    def truncated() -> None:
        nonlocal cut
        cut = True

    chunks = source_chunks(source, max_seconds=max_seconds, truncated=truncated)
    frames = _opus_frames(chunks) if codec is Codec.OPUS else _g711_frames(chunks, codec)
    return Prompt(tuple(frames), cut)


def encode_source(
    source: Content, codec: Codec = Codec.OPUS, *, max_seconds: float | None = MAX_PROMPT_SECONDS
) -> tuple[bytes, ...]:
    """The frames of `encode_prompt` (blocking)."""
    return encode_prompt(source, codec, max_seconds).frames


def _encode_tone(source: Content, codec: Codec, max_seconds: float) -> Prompt:
    frames = encode_source(source, codec, max_seconds=max_seconds)
    return Prompt(frames, isinstance(source, Tone) and source.duration_ms > max_seconds * 1000)


def _worker_started() -> None:
    """A decoding process leaves Ctrl-C to its parent and the CPU to the event loop's process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(5)


_FRAME_OVERHEAD = 41
"""Bytes a cached frame costs beyond its payload: a `bytes` object's header and its slot in the tuple."""


class FrameCache:
    """LRU cache of encoded prompt frames, so a prompt played to many calls is encoded once.

    Files are keyed by (resolved path, mtime, size), so an edited file is re-encoded; tones by their
    parameters. Use it from one thread (the event loop). On a miss `frames_async` decodes a file in one of
    `workers` processes (a burst of distinct prompts queues for them; a decoder that crashes on a hostile
    file takes only its process down) and computes a tone on a thread; concurrent callers asking for the
    same source share one encode. At most `max_prompt_seconds` of a source are encoded (a longer one is
    cut, with a warning in the log); the cache holds at most `max_entries` prompts and `max_bytes` of
    frames. `close` stops the worker processes.

    The workers are started with `spawn`, which imports the program's main module again: like every entry
    point of Switchboard, a program that embeds it must guard its start with `if __name__ == "__main__":`.
    """

    def __init__(
        self,
        max_entries: int = 256,
        *,
        max_bytes: int = 128 * 1024 * 1024,
        max_prompt_seconds: float = MAX_PROMPT_SECONDS,
        workers: int = DECODE_WORKERS,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes < 1 or workers < 1 or max_prompt_seconds <= 0:
            raise ValueError("max_bytes, workers and max_prompt_seconds must be positive")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.max_prompt_seconds = max_prompt_seconds
        self._workers = workers
        self._entries: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._bytes = 0
        self._in_flight: dict[Hashable, asyncio.Future[Prompt]] = {}
        self._processes: ProcessPoolExecutor | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """What the cached frames take (payloads and per-frame overhead)."""
        return self._bytes

    def frames(self, source: Content, codec: Codec = Codec.OPUS) -> Sequence[bytes]:
        """The frames of `source` in `codec`, encoding now on the caller's thread on a miss: for short
        sources only (a DTMF tone)."""
        key = (codec, self._key(source))
        cached = self._lookup(key)
        if cached is not None:
            return cached
        prompt = encode_prompt(source, codec, self.max_prompt_seconds)
        self._done(key, source, prompt)
        return prompt.frames

    async def frames_async(self, source: Content, codec: Codec = Codec.OPUS) -> Sequence[bytes]:
        """The frames of `source` in `codec`, encoding off the event loop on a miss."""
        key = (codec, self._key(source))
        cached = self._lookup(key)
        if cached is not None:
            return cached
        pending = self._in_flight.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            if isinstance(source, MediaLocator):
                pool = self._pool()
                pending = loop.run_in_executor(pool, encode_prompt, source, codec, self.max_prompt_seconds)
            else:
                pool = None
                pending = loop.run_in_executor(None, _encode_tone, source, codec, self.max_prompt_seconds)
            self._in_flight[key] = pending
            pending.add_done_callback(functools.partial(self._encoded, key, source, pool))
        try:
            # Shielded: a caller that is cancelled does not cancel the encode others wait for.
            prompt = await asyncio.shield(pending)
        except BrokenProcessPool:
            name = source.path.name if isinstance(source, MediaLocator) else "a tone"
            raise MediaError(f"the audio decoder stopped unexpectedly on {name}") from None
        return prompt.frames

    def close(self) -> None:
        """Stop the worker processes once they finish what they are decoding; queued decodes are dropped.
        The cache stays usable (a new process starts on the next miss)."""
        pool, self._processes = self._processes, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _pool(self) -> ProcessPoolExecutor:
        if self._processes is None:
            # spawn: a fork of a process running an event loop and threads may inherit a held lock.
            self._processes = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_started
            )
        return self._processes

    def _encoded(
        self,
        key: Hashable,
        source: Content,
        pool: ProcessPoolExecutor | None,
        future: asyncio.Future[Prompt],
    ) -> None:
        del self._in_flight[key]
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self._done(key, source, future.result())
        elif isinstance(error, BrokenProcessPool) and pool is not None and pool is self._processes:
            logger.error("an audio decoder process stopped unexpectedly; starting a new one")
            self.close()

    def _done(self, key: Hashable, source: Content, prompt: Prompt) -> None:
        if prompt.truncated:
            what = str(source.path) if isinstance(source, MediaLocator) else repr(source)
            logger.warning(
                "%s is longer than %g s: only its first %g s are played",
                what,
                self.max_prompt_seconds,
                self.max_prompt_seconds,
            )
        self._store(key, prompt.frames)

    def _key(self, source: Content) -> Hashable:
        if isinstance(source, Tone):
            return ("tone", source.frequency_hz, source.duration_ms, source.level_dbfs)
        if isinstance(source, DtmfTone):
            return source
        path = source.path.resolve()
        try:
            stat = path.stat()
        except OSError as exc:
            raise MediaError(f"cannot read audio file {path.name}: {exc.strerror or exc}") from None
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
        self._forget(key)
        size = sum(map(len, frames)) + _FRAME_OVERHEAD * len(frames)
        self._entries[key] = frames
        self._sizes[key] = size
        self._bytes += size
        while len(self._entries) > self._max_entries or (self._bytes > self._max_bytes and self._entries):
            self._forget(next(iter(self._entries)))

    def _forget(self, key: Hashable) -> None:
        if self._entries.pop(key, None) is not None:
            self._bytes -= self._sizes.pop(key)
