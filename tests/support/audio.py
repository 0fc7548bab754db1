"""Checking what a peer heard, by tone frequency."""

from __future__ import annotations

import io
import wave

import numpy as np

from switchboard.media.tones import dominant_frequency

RATE = 48000


def tone_wav(frequency: float, seconds: float, rate: int = RATE) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.4 * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def tone_windows(
    pcm: np.ndarray, frequency: float, *, rate: int = RATE, window_s: float = 0.1, tolerance_hz: float = 15.0
) -> int:
    """How many non-silent windows of `pcm` have `frequency` as their dominant frequency."""
    size = int(rate * window_s)
    count = 0
    for start in range(0, len(pcm) - size, size):
        chunk = pcm[start : start + size]
        if np.sqrt(np.mean(chunk.astype(np.float64) ** 2)) < 300:
            continue
        if abs(dominant_frequency(chunk, rate) - frequency) <= tolerance_hz:
            count += 1
    return count
