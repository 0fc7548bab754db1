"""Text to speech with the real eSpeak NG: audible output, caching, voices, SSML and clear errors."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from switchboard.core.errors import MediaError
from switchboard.media.audio import SAMPLE_RATE, load_pcm
from switchboard.media.inband import InbandDtmfDetector
from switchboard.media.tones import read_wav
from switchboard.media.tts import (
    SpeechSynthesizer,
    TtsError,
    espeak_voice,
    looks_like_ssml,
    words_per_minute,
)

needs_espeak = pytest.mark.skipif(
    not SpeechSynthesizer(Path("/nonexistent")).available(), reason="espeak-ng not installed"
)


def fake_espeak(tmp_path: Path, script: str) -> str:
    """An executable standing in for espeak-ng that records its argv and stdin."""
    path = tmp_path / "fake-espeak"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_voice_mapping() -> None:
    assert espeak_voice("en") == "en-us"
    assert espeak_voice("en-GB") == "en-gb"
    assert espeak_voice("pt-br") == "pt-br"
    assert espeak_voice("de") == "de"
    assert espeak_voice("it-it") == "it-it"  # resolved against installed voices at synthesis
    assert espeak_voice("en", "FEMALE") == "en-us+f3"
    assert espeak_voice("fr", "male") == "fr-fr"
    with pytest.raises(TtsError):
        espeak_voice("en", "ROBOT")
    with pytest.raises(TtsError):
        espeak_voice("en; rm -rf /")


def test_rate_and_ssml_detection() -> None:
    assert words_per_minute(1.0) == 175
    assert words_per_minute(1.5) == 262
    assert words_per_minute(0.1) == 80
    assert words_per_minute(10) == 450
    assert looks_like_ssml("<speak>Hello <break time='1s'/> world</speak>")
    assert looks_like_ssml('Press <say-as interpret-as="characters">1</say-as>')
    assert not looks_like_ssml("1 < 2 and 3 > 2")


@needs_espeak
async def test_synthesizes_audible_speech_and_caches(tmp_path: Path) -> None:
    tts = SpeechSynthesizer(tmp_path / "tts")
    assert tts.available()
    path = await tts.synthesize("Welcome to Switchboard. Press one for sales.")
    assert path.parent == tmp_path / "tts"
    samples, rate = read_wav(path)
    assert rate == 22050
    assert samples.size / rate > 1.5
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 500  # not silence
    mtime = path.stat().st_mtime_ns
    assert await tts.synthesize("Welcome to Switchboard. Press one for sales.") == path
    assert path.stat().st_mtime_ns == mtime
    assert list((tmp_path / "tts").iterdir()) == [path]  # no leftover temporary files

    # Speech is not mistaken for DTMF by the in-band detector.
    detector = InbandDtmfDetector(SAMPLE_RATE)
    pcm = load_pcm(path)
    assert detector.feed(pcm) + detector.flush() == []


@needs_espeak
async def test_rate_gender_language_and_ssml_change_the_audio(tmp_path: Path) -> None:
    tts = SpeechSynthesizer(tmp_path)
    text = "The quick brown fox jumps over the lazy dog."
    normal = await tts.synthesize(text)
    fast = await tts.synthesize(text, speech_rate=2.0)
    female = await tts.synthesize(text, voice_gender="FEMALE")
    german = await tts.synthesize("Guten Tag, willkommen.", language="de-DE")
    brazil = await tts.synthesize("Bom dia", language="pt-BR")
    italian = await tts.synthesize("Buongiorno", language="it-it")  # falls back to "it"
    ssml = await tts.synthesize("<speak>One <break time='1500ms'/> two</speak>")
    plain = await tts.synthesize("One two")
    assert len({normal, fast, female, german, brazil, italian, ssml, plain}) == 8
    assert read_wav(fast)[0].size < 0.7 * read_wav(normal)[0].size
    # The SSML break adds ~1.5 s of audio (and its tags are not read aloud).
    assert read_wav(ssml)[0].size - read_wav(plain)[0].size > 1.0 * 22050


@needs_espeak
async def test_concurrent_requests_for_same_text(tmp_path: Path) -> None:
    tts = SpeechSynthesizer(tmp_path)
    paths = await asyncio.gather(*(tts.synthesize("Please hold") for _ in range(4)))
    assert len(set(paths)) == 1
    assert [p.name for p in os.scandir(tmp_path)] == [paths[0].name]


@needs_espeak
async def test_unknown_language_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="xx-yy"):
        await SpeechSynthesizer(tmp_path).synthesize("hello", language="xx-yy")


async def test_missing_executable(tmp_path: Path) -> None:
    tts = SpeechSynthesizer(tmp_path, executable="/nonexistent/espeak-ng")
    assert not tts.available()
    with pytest.raises(TtsError, match="not installed") as info:
        await tts.synthesize("hello")
    assert isinstance(info.value, MediaError)


async def test_failing_executable(tmp_path: Path) -> None:
    exe = fake_espeak(tmp_path, 'echo "voice data missing" >&2\nexit 1\n')
    with pytest.raises(TtsError, match="voice data missing"):
        await SpeechSynthesizer(tmp_path / "cache", executable=exe).synthesize("hello")


async def test_empty_text(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="empty"):
        await SpeechSynthesizer(tmp_path).synthesize("   ")


async def test_argv_without_shell_and_text_on_stdin(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    # --voices prints a header only (no voice check); synthesis logs argv and stdin, writes a fake WAV.
    script = (
        'if [ "$1" = "--voices" ]; then echo "Pty Language Age/Gender VoiceName File"; exit 0; fi\n'
        f'printf "%s\\n" "$@" > {log}\ncat >> {log}\n'
        'while [ "$1" != "-w" ]; do shift; done\nhead -c 100 /dev/zero > "$2"\n'
    )
    exe = fake_espeak(tmp_path, script)
    text = "-x $(touch pwned) ; <speak>hi</speak>"
    path = await SpeechSynthesizer(tmp_path / "c", executable=exe).synthesize(
        text, language="pt-br", speech_rate=0.8, voice_gender="FEMALE"
    )
    lines = log.read_text().splitlines()
    assert lines[:6] == ["-v", "pt-br+f3", "-s", "140", "-m", "-w"]
    assert lines[7] == "--stdin"
    assert lines[8] == text
    assert path.exists()
    assert not (Path(os.getcwd()) / "pwned").exists()


async def test_timeout_kills_the_process(tmp_path: Path) -> None:
    exe = fake_espeak(tmp_path, 'if [ "$1" = "--voices" ]; then echo header; exit 0; fi\nexec sleep 30\n')
    tts = SpeechSynthesizer(tmp_path / "c", executable=exe, timeout_s=0.3)
    with pytest.raises(TtsError, match="longer than"):
        await tts.synthesize("hello")
