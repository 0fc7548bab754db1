"""Bounds on the work and memory one play can cost: prompts cut at `max_prompt_seconds` while they are
decoded, the format read from the content (never the name), errors without the node's paths, and a cache
bounded in bytes."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

import switchboard.media.audio as audio
from switchboard.media.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    FrameCache,
    decode_pcm,
    load_pcm,
    probe_audio,
    sniff_container,
)
from switchboard.media.embedded.session import Playout, RtpSession
from switchboard.media.engine import Codec, MediaLocator, Tone, UnplayableAudio
from switchboard.media.tones import dominant_frequency


def write_wav(path: Path, seconds: float, *, rate: int = 8000, frequency: float = 440.0) -> Path:
    t = np.arange(round(seconds * rate)) / rate
    samples: npt.NDArray[np.int16] = np.round(8000 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return path


def write_mp3(path: Path, seconds: float, frequency: float = 700.0) -> Path:
    rate = 44100
    t = np.arange(round(seconds * rate)) / rate
    pcm = np.round(8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate)
        stream.layout = "mono"
        for start in range(0, pcm.size, 1152):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + 1152].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


# -- the duration cap -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [Codec.OPUS, Codec.PCMU])
async def test_a_long_prompt_plays_only_its_first_max_prompt_seconds(
    tmp_path: Path, codec: Codec, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_wav(tmp_path / "long.wav", 5.0)
    cache = FrameCache(max_prompt_seconds=2)
    try:
        with caplog.at_level(logging.WARNING, logger="switchboard.media.audio"):
            frames = await cache.frames_async(MediaLocator.for_path(path), codec)
    finally:
        cache.close()
    assert len(frames) == 100, "2 s of 20 ms frames"
    assert any("longer than 2 s" in r.getMessage() and "long.wav" in r.getMessage() for r in caplog.records)


async def test_a_prompt_within_the_cap_is_whole_and_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_wav(tmp_path / "short.wav", 2.0)
    cache = FrameCache(max_prompt_seconds=2)
    try:
        with caplog.at_level(logging.WARNING, logger="switchboard.media.audio"):
            frames = await cache.frames_async(MediaLocator.for_path(path))
    finally:
        cache.close()
    assert len(frames) == 100
    assert not caplog.records


def test_a_long_tone_is_cut_too() -> None:
    cache = FrameCache(max_prompt_seconds=1)
    assert len(cache.frames(Tone(440, 3_600_000))) == 50


def test_decoding_stops_at_the_cap_instead_of_reading_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_wav(tmp_path / "ten-minutes.wav", 600.0)  # 9.6 MB
    read = 0
    real_read = audio._Unnamed.read

    def counting_read(self: audio._Unnamed, size: int = -1) -> bytes:
        nonlocal read
        data = real_read(self, size)
        read += len(data)
        return data

    monkeypatch.setattr(audio._Unnamed, "read", counting_read)
    truncated: list[bool] = []
    chunks = list(decode_pcm(path, max_seconds=1.0, truncated=lambda: truncated.append(True)))
    assert sum(c.size for c in chunks) == SAMPLE_RATE
    assert truncated == [True]
    assert read < 1_000_000, f"read {read} bytes of {path.stat().st_size} to decode one second"


def test_a_looped_play_cycles_over_the_same_frames() -> None:
    frames = tuple(bytes([n]) for n in range(50))
    session = RtpSession("leg", ssrc=1, cname="c", sequence=0, timestamp=0)
    session.play(frames, 1000, "p")
    assert isinstance(session.playout, Playout) and session.playout.frames is frames
    sent = [session.playout.next_frame() for _ in range(120)]
    assert sent[50:100] == list(frames) and session.playout.frames is frames


def test_the_cache_is_bounded_in_bytes() -> None:
    one = FrameCache()
    one.frames(Tone(400, 2000), Codec.PCMU)
    prompt = one.size_bytes
    assert prompt >= 100 * 160, "a 2 s PCMU prompt: 100 frames of 160 bytes and their overhead"
    cache = FrameCache(max_bytes=3 * prompt)
    first = cache.frames(Tone(400, 2000), Codec.PCMU)
    for n in range(1, 4):
        cache.frames(Tone(400 + n, 2000), Codec.PCMU)
    assert len(cache) == 3 and cache.size_bytes == 3 * prompt
    assert cache.frames(Tone(400, 2000), Codec.PCMU) is not first, "the oldest was evicted"


# -- the format is the content's --------------------------------------------------------------------


def test_containers_are_recognised_by_their_signature() -> None:
    assert sniff_container(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_container(b"OggS\x00\x02") == "ogg"
    assert sniff_container(b"fLaC\x00\x00\x00\x22") == "flac"
    assert sniff_container(b"ID3\x04\x00\x00\x00\x00\x00\x23") == "mp3"
    assert sniff_container(b"\xff\xfb\x90\x64\x00") == "mp3"  # MPEG-1 layer III frame header
    assert sniff_container(b"\xff\xf1\x50\x40\x24") == "aac"  # ADTS, not MP3
    assert sniff_container(b"\x00\x00\x00\x1cftypisom") == "mp4"
    for other in (
        b"",
        b"<html><body>Not found</body></html>",
        b"\xff\xe0\x00",
        b"\xff\xea\x00",
        b"RIFF\x00\x00\x00\x00AVI ",
    ):
        assert sniff_container(other) is None


def test_an_mp3_named_wav_plays_and_a_page_named_like_raw_audio_does_not(tmp_path: Path) -> None:
    mp3 = write_mp3(tmp_path / "tone.wav", 1.0)
    pcm = load_pcm(mp3)
    assert abs(pcm.size - SAMPLE_RATE) < 3 * FRAME_SAMPLES
    assert dominant_frequency(pcm[4800:], SAMPLE_RATE) == pytest.approx(700, abs=5)
    page = tmp_path / "prompt.ul"  # FFmpeg's raw μ-law demuxer claims `.ul` by name alone
    page.write_text("<html><body>Not found</body></html>\n" * 200)
    with pytest.raises(UnplayableAudio) as caught:
        load_pcm(page)
    assert "prompt.ul" in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_decode_errors_name_the_file_but_not_its_directory(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    with pytest.raises(UnplayableAudio) as caught:
        load_pcm(junk)
    assert "junk.wav" in str(caught.value) and str(tmp_path) not in str(caught.value)
    assert caught.value.status_hint == 400


def test_probe_accepts_audio_by_content_and_says_how_long(tmp_path: Path) -> None:
    probe = probe_audio(write_wav(tmp_path / "two.bin", 2.0))
    assert probe.container == "wav" and probe.duration_s == pytest.approx(2.0)
    assert probe_audio(write_mp3(tmp_path / "tone.dat", 1.5)).container == "mp3"
    for name, data in (
        ("page.wav", b"<html>not found</html>"),
        ("header-only.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnplayableAudio) as caught:
            probe_audio(tmp_path / name)
        assert str(tmp_path) not in str(caught.value)
