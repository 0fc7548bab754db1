"""Recorders write files that decode back (with PyAV or the wave module) to the tone that was recorded."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from switchboard.core.errors import MediaError
from switchboard.media.audio import FRAME_SAMPLES, SAMPLE_RATE, load_pcm, tone_pcm
from switchboard.media.engine import RecordingFormat
from switchboard.media.recording import OggOpusRecorder, Recorder, WavRecorder, open_recorder
from switchboard.media.tones import dominant_frequency, read_wav, tone_power_ratio


def record(recorder: Recorder, pcm: npt.NDArray[np.int16], chunk: int = FRAME_SAMPLES) -> tuple[int, int]:
    for start in range(0, pcm.size, chunk):
        recorder.write(pcm[start : start + chunk])
    return recorder.close()


def test_wav_recording_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "calls" / "rec.wav"
    pcm = tone_pcm(1000, 1500)
    recorder = WavRecorder(path)
    duration_ms, size = record(recorder, pcm)
    assert (duration_ms, size) == (1500, 44 + 2 * pcm.size)
    assert path.stat().st_size == size
    samples, rate = read_wav(path)
    assert rate == SAMPLE_RATE
    assert np.array_equal(samples, pcm)
    assert recorder.close() == (duration_ms, size)  # idempotent
    with pytest.raises(MediaError):
        recorder.write(pcm[:960])


def test_wav_written_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    recorder = WavRecorder(path)
    for _ in range(100):
        recorder.write(tone_pcm(440, 20))
    # The samples are on disk before close (not buffered in memory).
    assert path.stat().st_size >= 100 * 1920 - 8192
    recorder.close()


def test_ogg_opus_recording_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rec.ogg"
    pcm = tone_pcm(1000, 2000)
    duration_ms, size = record(OggOpusRecorder(path), pcm, chunk=700)  # chunks not aligned to frames
    assert duration_ms == 2000
    assert size == path.stat().st_size
    assert 2000 < size < 20000  # ~32 kbit/s
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name in ("opus", "libopus")
        assert container.format.name == "ogg"
    decoded = load_pcm(path)
    assert abs(decoded.size - pcm.size) <= FRAME_SAMPLES
    assert dominant_frequency(decoded[4800:-4800], SAMPLE_RATE) == pytest.approx(1000, abs=3)
    assert tone_power_ratio(decoded[4800:-4800], SAMPLE_RATE, 1000) > 0.95


def test_open_recorder_by_format(tmp_path: Path) -> None:
    wav = open_recorder(tmp_path / "a.wav", RecordingFormat.WAV)
    ogg = open_recorder(tmp_path / "a.ogg", RecordingFormat.OGG)
    assert isinstance(wav, WavRecorder)
    assert isinstance(ogg, OggOpusRecorder)
    assert wav.path == tmp_path / "a.wav"
    for recorder in (wav, ogg):
        recorder.write(tone_pcm(300, 100))
        assert recorder.close()[0] == 100


def test_empty_recordings_are_valid_files(tmp_path: Path) -> None:
    assert WavRecorder(tmp_path / "e.wav").close() == (0, 44)
    assert read_wav(tmp_path / "e.wav")[0].size == 0
    duration_ms, _ = OggOpusRecorder(tmp_path / "e.ogg").close()
    assert duration_ms == 0
    decoded = load_pcm(tmp_path / "e.ogg")  # one silent frame: FFmpeg needs at least one audio page
    assert decoded.size <= 2 * FRAME_SAMPLES
    assert int(np.abs(decoded).max()) <= 4


def test_read_wav_downmixes_stereo(tmp_path: Path) -> None:
    import wave

    left = tone_pcm(500, 100)
    right = np.zeros_like(left)
    with wave.open(str(tmp_path / "s.wav"), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    samples, rate = read_wav(tmp_path / "s.wav")
    assert rate == 16000
    assert samples.size == left.size
    assert np.abs(samples.astype(int) - left.astype(int) // 2).max() <= 1
