"""In-band DTMF detection on synthesized Q.23 tones, with noise, twist, level limits and non-DTMF audio."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from switchboard.media.inband import COLUMNS, KEYS, ROWS, InbandDtmfDetector

RATE = 48000


def dual_tone(
    digit: str,
    duration_ms: int,
    *,
    rate: int = RATE,
    level_dbfs: float = -10.0,
    twist_db: float = 0.0,
    offset: float = 0.0,
) -> npt.NDArray[np.float64]:
    """Q.23 dual tone; `twist_db` > 0 makes the column (high) tone stronger; `offset` is a frequency ratio."""
    row = next(r for r, keys in enumerate(KEYS) if digit in keys)
    column = KEYS[row].index(digit)
    t = np.arange(rate * duration_ms // 1000) / rate
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    low = amplitude * np.sin(2 * np.pi * ROWS[row] * (1 + offset) * t)
    high = amplitude * 10 ** (twist_db / 20) * np.sin(2 * np.pi * COLUMNS[column] * (1 + offset) * t + 1.0)
    result: npt.NDArray[np.float64] = low + high
    return result


def silence(duration_ms: int, rate: int = RATE) -> npt.NDArray[np.float64]:
    return np.zeros(rate * duration_ms // 1000)


def to_pcm(signal: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def detect(signal: npt.NDArray[np.float64], *, rate: int = RATE, chunk: int = 960) -> list[tuple[str, int]]:
    detector = InbandDtmfDetector(rate)
    pcm = to_pcm(signal)
    results: list[tuple[str, int]] = []
    for start in range(0, pcm.size, chunk):
        results += detector.feed(pcm[start : start + chunk])
    return results + detector.flush()


def sequence(digits: str, tone_ms: int = 100, gap_ms: int = 60, rate: int = RATE) -> npt.NDArray[np.float64]:
    parts = [silence(50, rate)]
    for digit in digits:
        parts += [dual_tone(digit, tone_ms, rate=rate), silence(gap_ms, rate)]
    return np.concatenate(parts)


def test_all_sixteen_keys_each_once_with_duration() -> None:
    results = detect(sequence("0123456789*#ABCD"))
    assert [d for d, _ in results] == list("0123456789*#ABCD")
    for _, duration in results:
        assert 85 <= duration <= 115


def test_8khz_input_and_odd_chunk_sizes() -> None:
    results = detect(sequence("159#", rate=8000), rate=8000, chunk=77)
    assert [d for d, _ in results] == list("159#")


def test_repeated_digit_with_minimum_pause() -> None:
    # Q.24: 40 ms tones separated by 40 ms pauses must be seen as separate presses.
    signal = np.concatenate(
        [silence(30)] + [part for _ in range(3) for part in (dual_tone("8", 40), silence(40))]
    )
    assert [d for d, _ in detect(signal)] == ["8", "8", "8"]


@pytest.mark.parametrize("start_ms", [0, 3, 7, 11])
def test_minimum_tone_40ms_detected_at_any_alignment(start_ms: int) -> None:
    signal = np.concatenate([silence(start_ms), dual_tone("3", 40), silence(60)])
    assert [d for d, _ in detect(signal)] == ["3"]


def test_too_short_tone_rejected() -> None:
    signal = np.concatenate([silence(20), dual_tone("3", 20), silence(60)])
    assert detect(signal) == []


def test_long_press_reported_once_with_its_length() -> None:
    results = detect(np.concatenate([silence(20), dual_tone("*", 1500), silence(60)]))
    assert len(results) == 1
    assert results[0][0] == "*"
    assert abs(results[0][1] - 1500) <= 15


def test_detected_in_white_noise() -> None:
    rng = np.random.default_rng(24)
    signal = sequence("2580")
    noisy = signal + rng.normal(0, 32767 * 10 ** (-32 / 20), signal.size)  # ~20 dB SNR per tone
    assert [d for d, _ in detect(noisy)] == list("2580")


@pytest.mark.parametrize("at_ms", [90, 93, 97, 101])
def test_short_dropout_does_not_split_a_press(at_ms: int) -> None:
    signal = dual_tone("6", 200)
    signal[RATE * at_ms // 1000 : RATE * (at_ms + 6) // 1000] = 0  # 6 ms dropout, any alignment
    assert [d for d, _ in detect(np.concatenate([silence(20), signal, silence(60)]))] == ["6"]


@pytest.mark.parametrize(("twist_db", "detected"), [(-7.0, True), (3.0, True), (-11.0, False), (7.0, False)])
def test_twist_limits(twist_db: float, detected: bool) -> None:
    signal = np.concatenate([silence(20), dual_tone("5", 100, level_dbfs=-8, twist_db=twist_db), silence(60)])
    assert bool(detect(signal)) is detected


@pytest.mark.parametrize(("level_dbfs", "detected"), [(-30.0, True), (-45.0, False)])
def test_level_threshold(level_dbfs: float, detected: bool) -> None:
    signal = np.concatenate([silence(20), dual_tone("0", 100, level_dbfs=level_dbfs), silence(60)])
    assert bool(detect(signal)) is detected


def test_frequency_deviation_within_q24_accepted() -> None:
    signal = np.concatenate([silence(20), dual_tone("9", 100, offset=0.015), silence(60)])
    assert [d for d, _ in detect(signal)] == ["9"]


@pytest.mark.parametrize("frequency", [697.0, 941.0, 1000.0, 1209.0, 1633.0, 440.0])
def test_single_tone_not_detected(frequency: float) -> None:
    t = np.arange(RATE) / RATE
    assert detect(10000 * np.sin(2 * np.pi * frequency * t)) == []


def test_dial_tone_and_chord_not_detected() -> None:
    t = np.arange(RATE) / RATE
    dial_tone = 8000 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t))
    # Three tones (row + column + a third loud one) are not a key: energy ratio test.
    chord = dual_tone("1", 1000) + 12000 * np.sin(2 * np.pi * 1100 * t)
    assert detect(dial_tone) == []
    assert detect(chord) == []


def test_noise_and_harmonic_rich_signal_not_detected() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 6000, RATE * 2)
    t = np.arange(RATE * 2) / RATE
    # A 110 Hz buzz with harmonics (speech-like voicing): harmonics land near 770 (7th) and 1320 (12th).
    buzz = sum(3000 / k * np.sin(2 * np.pi * 110 * k * t) for k in range(1, 30))
    assert detect(noise) == []
    assert detect(np.asarray(buzz)) == []


def test_feed_returns_on_tone_end_not_before() -> None:
    detector = InbandDtmfDetector()
    assert detector.feed(to_pcm(np.concatenate([silence(20), dual_tone("4", 100)]))) == []
    [(digit, duration)] = detector.feed(to_pcm(silence(60)))
    assert digit == "4"
    assert abs(duration - 100) <= 15


def test_detected_after_opus_round_trip() -> None:
    # What the engine does: decode the peer's Opus, then detect.
    from switchboard.media.audio import OpusDecoder, OpusEncoder

    packets = OpusEncoder().encode(to_pcm(sequence("147*", tone_ms=60, gap_ms=50)))
    decoder = OpusDecoder()
    detector = InbandDtmfDetector()
    results: list[tuple[str, int]] = []
    for packet in packets:
        results += detector.feed(decoder.decode(packet))
    assert [d for d, _ in results + detector.flush()] == list("147*")
