"""Audio checks by frequency: which tone is this, and how much of the energy is that tone.

Used by tests and benchmarks to verify that audio went through end to end ("the far side heard 1 kHz"),
which survives codecs, resampling and level changes where sample comparison does not.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt


def _spectrum(
    pcm: npt.NDArray[np.generic], sample_rate: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    samples = np.asarray(pcm, dtype=np.float64).reshape(-1)
    if samples.size == 0:
        raise ValueError("no samples")
    samples = samples - samples.mean()
    spectrum = np.fft.rfft(samples * np.hanning(samples.size))
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float64)
    freqs = np.fft.rfftfreq(samples.size, 1.0 / sample_rate).astype(np.float64)
    return freqs, power


def dominant_frequency(pcm: npt.NDArray[np.generic], sample_rate: int) -> float:
    """The frequency (Hz) of the strongest spectral peak, refined by parabolic interpolation."""
    freqs, power = _spectrum(pcm, sample_rate)
    peak = int(np.argmax(power[1:])) + 1
    if 1 <= peak < power.size - 1:
        a, b, c = np.log(power[peak - 1 : peak + 2] + 1e-12)
        denominator = a - 2 * b + c
        offset = 0.5 * (a - c) / denominator if denominator != 0 else 0.0
        return float(freqs[peak] + offset * (freqs[1] - freqs[0]))
    return float(freqs[peak])


def tone_power_ratio(
    pcm: npt.NDArray[np.generic], sample_rate: int, frequency_hz: float, bandwidth_hz: float = 20
) -> float:
    """Fraction (0-1) of the signal's energy within `bandwidth_hz` of `frequency_hz` (0 for silence).

    The band is widened to at least the window's main lobe (4 bins of a Hann window), so short clips work.
    """
    freqs, power = _spectrum(pcm, sample_rate)
    total = float(power.sum())
    if total <= 0:
        return 0.0
    half_band = max(bandwidth_hz, 2 * (float(freqs[1]) if freqs.size > 1 else 0.0))
    band = np.abs(freqs - frequency_hz) <= half_band
    return float(power[band].sum()) / total


def read_wav(path: Path | str) -> tuple[npt.NDArray[np.int16], int]:
    """(mono int16 samples, sample rate) of a 16-bit PCM WAV file; stereo is downmixed by averaging."""
    with wave.open(str(path), "rb") as reader:
        if reader.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * reader.getsampwidth()}-bit WAV, expected 16-bit PCM")
        channels = reader.getnchannels()
        rate = reader.getframerate()
        data = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
    return data.astype(np.int16, copy=False), rate
