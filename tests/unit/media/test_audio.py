"""PCM loading, tones, Opus encode/decode round trips (checked by frequency) and the prompt frame cache."""

from __future__ import annotations

import asyncio
import os
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from switchboard.core.errors import MediaError
from switchboard.media.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    FrameCache,
    OpusDecoder,
    OpusEncoder,
    load_pcm,
    silence_frame,
    tone_pcm,
)
from switchboard.media.engine import Codec, MediaLocator, Tone
from switchboard.media.tones import dominant_frequency, tone_power_ratio


def write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())


def decode_all(packets: Sequence[bytes]) -> npt.NDArray[np.int16]:
    decoder = OpusDecoder()
    return np.concatenate([decoder.decode(p) for p in packets])


def test_constants() -> None:
    assert (SAMPLE_RATE, FRAME_SAMPLES) == (48000, 960)


def test_tone_pcm_level_and_frequency() -> None:
    pcm = tone_pcm(1000, 500, level_dbfs=-6.0)
    assert pcm.dtype == np.int16
    assert pcm.size == 24000
    assert abs(int(np.abs(pcm).max()) - round(32767 * 10 ** (-6 / 20))) <= 2
    assert dominant_frequency(pcm, SAMPLE_RATE) == pytest.approx(1000, abs=1)


def test_opus_round_trip_keeps_the_tone() -> None:
    pcm = tone_pcm(1000, 1000)
    packets = OpusEncoder().encode(pcm)
    assert len(packets) == 50
    assert all(0 < len(p) < 200 for p in packets)
    decoded = decode_all(packets)
    assert decoded.dtype == np.int16
    assert decoded.size == 50 * FRAME_SAMPLES
    steady = decoded[4800:]
    assert dominant_frequency(steady, SAMPLE_RATE) == pytest.approx(1000, abs=3)
    assert tone_power_ratio(steady, SAMPLE_RATE, 1000) > 0.95
    # Level survives within ~1 dB.
    rms_in = np.sqrt(np.mean(pcm[4800:].astype(float) ** 2))
    rms_out = np.sqrt(np.mean(steady.astype(float) ** 2))
    assert abs(20 * np.log10(rms_out / rms_in)) < 1.0


def test_encoder_pads_last_frame_and_streams() -> None:
    encoder = OpusEncoder()
    assert len(encoder.encode(tone_pcm(440, 50))) == 3  # 2400 samples -> 2.5 frames -> 3
    assert len(encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))) == 1
    assert encoder.encode(np.zeros(0, dtype=np.int16)) == []


def test_decoder_downmixes_stereo_packets() -> None:
    # A stereo encoder (as Chromium sometimes uses): left 600 Hz, right 600 Hz -> mono 600 Hz.
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = SAMPLE_RATE
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.bit_rate = 64000
    ctx.open()
    tone = tone_pcm(600, 600)
    interleaved = np.repeat(tone, 2)
    packets: list[bytes] = []
    for i in range(tone.size // FRAME_SAMPLES):
        frame = av.AudioFrame.from_ndarray(
            interleaved[i * 2 * FRAME_SAMPLES : (i + 1) * 2 * FRAME_SAMPLES].reshape(1, -1),
            format="s16",
            layout="stereo",
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        packets += [bytes(p) for p in ctx.encode(frame)]
    assert packets[0][0] & 0x04, "TOC stereo flag expected"
    decoded = decode_all(packets)
    assert decoded.size == len(packets) * FRAME_SAMPLES
    assert dominant_frequency(decoded[4800:], SAMPLE_RATE) == pytest.approx(600, abs=3)


def test_decoder_rejects_garbage_and_keeps_working() -> None:
    decoder = OpusDecoder()
    for bad in (b"", b"\xff\xff\xff", b"\x03"):
        with pytest.raises(MediaError):
            decoder.decode(bad)
    packets = OpusEncoder().encode(tone_pcm(1000, 200))
    decoded = np.concatenate([decoder.decode(p) for p in packets])
    assert dominant_frequency(decoded[2400:], SAMPLE_RATE) == pytest.approx(1000, abs=5)


def test_silence_frame_is_cached_and_silent() -> None:
    frame = silence_frame()
    assert frame is silence_frame()
    assert len(frame) == 3
    # Silent also right after speech (no decoder state leaks into it beyond one frame).
    decoder = OpusDecoder()
    for packet in OpusEncoder().encode(tone_pcm(1000, 100)):
        decoder.decode(packet)
    decoder.decode(frame)
    assert not decoder.decode(frame).any()
    assert OpusDecoder().decode(frame).size == FRAME_SAMPLES


def test_load_pcm_resamples_and_downmixes(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    mono8k = np.round(8000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16)
    write_wav(tmp_path / "a.wav", np.repeat(mono8k, 2), 8000, channels=2)
    pcm = load_pcm(tmp_path / "a.wav")
    assert pcm.dtype == np.int16
    assert abs(pcm.size - 48000) <= 960
    assert dominant_frequency(pcm, SAMPLE_RATE) == pytest.approx(700, abs=2)


def test_load_pcm_other_format(tmp_path: Path) -> None:
    # An Ogg Vorbis/FLAC made by sox: anything FFmpeg reads.
    path = tmp_path / "tone.flac"
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", str(path), "synth", "0.5", "sine", "1500"], check=True
    )
    pcm = load_pcm(path)
    assert abs(pcm.size - 24000) <= 960
    assert dominant_frequency(pcm, SAMPLE_RATE) == pytest.approx(1500, abs=3)


def test_load_pcm_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"missing\.wav"):
        load_pcm(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(MediaError):
        load_pcm(tmp_path / "junk.wav")


def test_frame_cache_tone_and_file(tmp_path: Path) -> None:
    cache = FrameCache(max_entries=2)
    tone = Tone(frequency_hz=800, duration_ms=400)
    frames = cache.frames(tone)
    assert len(frames) == 20
    assert cache.frames(Tone(frequency_hz=800, duration_ms=400)) is frames
    assert dominant_frequency(decode_all(frames)[2000:], SAMPLE_RATE) == pytest.approx(800, abs=3)

    path = tmp_path / "prompt.wav"
    write_wav(path, tone_pcm(500, 300), SAMPLE_RATE)
    file_frames = cache.frames(MediaLocator.for_path(path))
    assert len(file_frames) == 15
    assert cache.frames(MediaLocator.for_path(path)) is file_frames
    assert (cache.hits, cache.misses) == (2, 2)

    # A changed file (new mtime/size) is re-encoded.
    write_wav(path, tone_pcm(500, 600), SAMPLE_RATE)
    os.utime(path, ns=(1, 1))
    assert len(cache.frames(MediaLocator.for_path(path))) == 30

    # LRU: max 2 entries, the tone was least recently used.
    assert len(cache) == 2
    assert cache.frames(tone) is not frames


def test_frame_cache_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        FrameCache().frames(MediaLocator.for_path(tmp_path / "nope.wav"))


async def test_frame_cache_async_encodes_once_for_concurrent_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import switchboard.media.audio as audio

    calls = 0
    real = audio.encode_source

    def counting(source: Tone | MediaLocator, codec: Codec = Codec.OPUS, **options: Any) -> tuple[bytes, ...]:
        nonlocal calls
        calls += 1
        return real(source, codec, **options)

    monkeypatch.setattr(audio, "encode_source", counting)
    cache = FrameCache()
    tone = Tone(frequency_hz=300, duration_ms=2000)
    results = await asyncio.gather(*(cache.frames_async(tone) for _ in range(5)))
    assert calls == 1
    assert all(r is results[0] for r in results)
    assert len(results[0]) == 100
    assert await cache.frames_async(tone) is results[0]
    assert calls == 1


async def test_frame_cache_async_error_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(b"garbage" * 100)
    cache = FrameCache()
    with pytest.raises(MediaError):
        await cache.frames_async(MediaLocator.for_path(path))
    assert len(cache) == 0
    write_wav(path, tone_pcm(500, 100), SAMPLE_RATE)
    assert len(await cache.frames_async(MediaLocator.for_path(path))) == 5
