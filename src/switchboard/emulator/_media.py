"""Media helpers for the emulated WhatsApp user: host-candidate restriction, an audio source,
a recorder, RFC 4733 DTMF and a tone detector."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import struct
import time
import wave
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import aioice.ice
import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
PCM = npt.NDArray[np.int16]

# --- ICE host candidates -------------------------------------------------------------------------

_host_addresses: ContextVar[tuple[str, ...] | None] = ContextVar(
    "switchboard_emulator_host_addresses", default=None
)


def _install_host_address_hook() -> None:
    """Wrap `aioice.ice.get_host_addresses` once; the wrapper obeys `restrict_host_addresses`.

    Outside a `restrict_host_addresses` block aioice behaves as before, so other peers in the same
    process (the server under test) are unaffected.
    """
    current = aioice.ice.get_host_addresses
    if getattr(current, "_switchboard_emulator", False):
        return
    original = current

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = _host_addresses.get()
        if addresses is None:
            return list(original(use_ipv4, use_ipv6))
        return [a for a in addresses if (use_ipv6 if ":" in a else use_ipv4)]

    get_host_addresses._switchboard_emulator = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses


@contextlib.contextmanager
def restrict_host_addresses(addresses: Sequence[str]) -> Iterator[None]:
    """ICE gathering inside this block (e.g. `await pc.setLocalDescription(...)`) offers host
    candidates on exactly `addresses` (loopback allowed) and nothing else."""
    _install_host_address_hook()
    token = _host_addresses.set(tuple(addresses))
    try:
        yield
    finally:
        _host_addresses.reset(token)


# --- audio ---------------------------------------------------------------------------------------


def tone(frequency: float, seconds: float, *, amplitude: float = 0.3) -> PCM:
    """A sine tone as 48 kHz mono int16."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype(np.int16)


def read_audio_file(path: str | Path) -> PCM:
    """Decode any file PyAV reads (WAV included) to 48 kHz mono int16."""
    chunks: list[PCM] = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1).astype(np.int16))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def write_wav(path: str | Path, pcm: PCM, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype(np.int16).tobytes())


def dominant_frequency(pcm: npt.NDArray[Any], rate: int = SAMPLE_RATE) -> float:
    """The strongest frequency in `pcm` (Hz), from a Hann-windowed FFT; 0.0 for silence."""
    samples = np.asarray(pcm, dtype=np.float64)
    if samples.size == 0 or not np.any(samples):
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum) * rate / samples.size)


class AudioOut(MediaStreamTrack):
    """The user's microphone: silence, a tone or PCM (looped or once), paced at 20 ms per frame."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm: PCM | None = None
        self._repeat = False
        self._position = 0
        self._tone: tuple[float, float] | None = None
        self._start: float | None = None
        self._pts = 0

    def play_silence(self) -> None:
        self._pcm, self._tone = None, None

    def play_tone(self, frequency: float, amplitude: float = 0.3) -> None:
        self._pcm, self._tone = None, (frequency, amplitude)

    def play_pcm(self, pcm: PCM, *, loop: bool = False) -> None:
        self._tone, self._pcm, self._repeat, self._position = None, pcm, loop, 0

    def _next_samples(self) -> PCM:
        if self._tone is not None:
            frequency, amplitude = self._tone
            t = (self._pts + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
            return (np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype(np.int16)
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        pcm = self._pcm
        if pcm is None or pcm.size == 0:
            return out
        filled = 0
        while filled < FRAME_SAMPLES:
            if self._position >= pcm.size:
                if not self._repeat:
                    self._pcm = None
                    break
                self._position = 0
            take = min(FRAME_SAMPLES - filled, pcm.size - self._position)
            out[filled : filled + take] = pcm[self._position : self._position + take]
            filled += take
            self._position += take
        return out

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += FRAME_SAMPLES
            wait = self._start + self._pts / SAMPLE_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = self._next_samples()
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class Recorder:
    """Records a remote audio track to a 48 kHz mono WAV file and keeps the PCM in memory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._chunks: list[PCM] = []
        self._wav: wave.Wave_write | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, track: MediaStreamTrack) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._wav = wav = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed by stop())
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.int16)
                self._chunks.append(pcm)
                wav.writeframes(pcm.tobytes())

    def pcm(self) -> PCM:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._wav is not None:
            self._wav.close()
            self._wav = None


# --- RFC 4733 DTMF -------------------------------------------------------------------------------

DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
DTMF_CLOCK = 8000
DTMF_PACKET_MS = 20


def telephone_event_packets(
    digit: str,
    *,
    ssrc: int,
    sequence_number: int,
    timestamp: int,
    payload_type: int = 126,
    duration_ms: int = 100,
    volume: int = 10,
) -> list[bytes]:
    """The RTP packets of one RFC 4733 event: one every 20 ms with a growing duration (marker on
    the first), then the end packet three times. All share the event's start `timestamp`."""
    event = DTMF_EVENTS[digit.upper()]
    step = DTMF_CLOCK * DTMF_PACKET_MS // 1000
    total = max(step, DTMF_CLOCK * duration_ms // 1000)
    durations = list(range(step, total, step))
    packets: list[bytes] = []
    seq = sequence_number

    def packet(marker: bool, end: bool, duration: int) -> bytes:
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | payload_type,
            seq & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration)
        return header + payload

    for i, duration in enumerate(durations):
        packets.append(packet(i == 0, False, duration))
        seq += 1
    for i in range(3):
        packets.append(packet(not durations and i == 0, True, total))
        seq += 1
    return packets


async def send_dtmf(
    sender: Any,
    digits: str,
    *,
    duration_ms: int = 100,
    gap_ms: int = 100,
    payload_type: int = 126,
) -> None:
    """Press `digits` as RFC 4733 telephone-events on a separate SSRC of `sender`'s transport.

    aiortc has no DTMF sender: this builds the RTP packets itself and hands them to the private
    `RTCDtlsTransport._send_rtp`, which SRTP-protects and sends them. This is the only place that
    reaches into aiortc's internals for DTMF.
    """
    transport = sender.transport
    rng = np.random.default_rng()
    ssrc = int(rng.integers(1, 2**32 - 1))
    sequence_number = int(rng.integers(0, 2**15))
    timestamp = int(rng.integers(0, 2**31))
    for digit in digits:
        packets = telephone_event_packets(
            digit,
            ssrc=ssrc,
            sequence_number=sequence_number,
            timestamp=timestamp,
            payload_type=payload_type,
            duration_ms=duration_ms,
        )
        for packet in packets:
            await transport._send_rtp(packet)
            await asyncio.sleep(DTMF_PACKET_MS / 1000)
        sequence_number += len(packets)
        timestamp += DTMF_CLOCK * (duration_ms + 3 * DTMF_PACKET_MS + gap_ms) // 1000
        await asyncio.sleep(gap_ms / 1000)
