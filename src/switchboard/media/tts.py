"""Text to speech with eSpeak NG, for the `say` action (Infobip's `language`, `speechRate`, `voice.gender`).

Each utterance is rendered once to a WAV in the cache directory, named by a hash of everything that shapes
the audio, and reused afterwards. eSpeak NG runs as a subprocess with an argv list (never a shell) and reads
the text on stdin, so no text can be taken for an option. SSML (W3C SSML 1.1 §2.1 `<speak>` root, or any
SSML element) is passed with `-m`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import shutil
from pathlib import Path

from switchboard.errors import MediaError

BASE_WORDS_PER_MINUTE = 175
"""eSpeak NG's default speed, which Infobip's speechRate 1.0 maps to."""
MIN_WORDS_PER_MINUTE = 80
MAX_WORDS_PER_MINUTE = 450

VOICES: dict[str, str] = {
    "en": "en-us",
    "en-us": "en-us",
    "en-gb": "en-gb",
    "en-au": "en-gb",
    "en-in": "en-gb",
    "en-ie": "en-gb",
    "en-za": "en-gb",
    "en-gb-wls": "en-gb",
    "pt": "pt",
    "pt-pt": "pt",
    "pt-br": "pt-br",
    "es": "es",
    "es-es": "es",
    "es-mx": "es-419",
    "es-us": "es-419",
    "es-419": "es-419",
    "fr": "fr-fr",
    "fr-fr": "fr-fr",
    "fr-ca": "fr-fr",
    "fr-be": "fr-be",
    "fr-ch": "fr-ch",
    "de": "de",
    "de-de": "de",
    "de-at": "de",
    "de-ch": "de",
    "zh": "cmn",
    "zh-cn": "cmn",
    "zh-tw": "cmn",
    "zh-hk": "yue",
    "yue": "yue",
    "nb": "nb",
    "no": "nb",
    "nb-no": "nb",
    "nl-be": "nl",
    "vi": "vi",
}
"""Infobip language codes to eSpeak NG voices where they differ; others are tried as given, then by the
part before the first dash (e.g. "it-it" -> "it")."""

GENDER_VARIANTS = {"FEMALE": "+f3", "MALE": ""}
"""eSpeak NG voice variants (`-v voice+variant`); the default voices are male."""

_SSML = re.compile(
    r"<\s*/?\s*(speak|break|prosody|say-as|emphasis|sub|voice|audio|mark|phoneme|p|s)\b[^>]*>",
    re.IGNORECASE,
)


class TtsError(MediaError):
    """Speech could not be synthesized (eSpeak NG missing or failing)."""


class UnknownLanguage(TtsError):
    """The request names a language no installed voice speaks: the caller's mistake, a 400."""

    status_hint = 400

    def __init__(self, language: str, why: str) -> None:
        super().__init__(f"language: {language!r} {why}")


def looks_like_ssml(text: str) -> bool:
    return _SSML.search(text) is not None


def espeak_voice(language: str, voice_gender: str | None = None) -> str:
    """The `-v` argument for an Infobip language code and voice gender ("MALE"/"FEMALE")."""
    code = language.strip().lower().replace("_", "-")
    if not code or not re.fullmatch(r"[a-z0-9-]+", code):
        raise UnknownLanguage(language, "is not a language code (such as en, en-gb or pt-br)")
    voice = VOICES.get(code) or VOICES.get(code.split("-")[0]) or code
    if voice_gender is not None:
        try:
            voice += GENDER_VARIANTS[voice_gender.upper()]
        except KeyError:
            raise TtsError(f"unknown voice gender {voice_gender!r} (MALE or FEMALE)") from None
    return voice


def words_per_minute(speech_rate: float) -> int:
    wpm = round(BASE_WORDS_PER_MINUTE * speech_rate)
    return max(MIN_WORDS_PER_MINUTE, min(MAX_WORDS_PER_MINUTE, wpm))


class SpeechSynthesizer:
    """Renders text to WAV files (22.05 kHz mono, as eSpeak NG writes them) in `cache_dir`."""

    def __init__(self, cache_dir: Path, executable: str = "espeak-ng", *, timeout_s: float = 60.0) -> None:
        self.cache_dir = cache_dir
        self.executable = executable
        self.timeout_s = timeout_s
        self._voices: set[str] | None = None

    def available(self) -> bool:
        """Whether the eSpeak NG executable can be found."""
        return shutil.which(self.executable) is not None

    async def synthesize(
        self,
        text: str,
        *,
        language: str = "en",
        speech_rate: float = 1.0,
        voice_gender: str | None = None,
    ) -> Path:
        """The path of a WAV saying `text`, rendered now or found in the cache."""
        if not text.strip():
            raise TtsError("nothing to say: the text is empty")
        voice = await self._resolve_voice(language, voice_gender)
        ssml = looks_like_ssml(text)
        argv_options = ["-v", voice, "-s", str(words_per_minute(speech_rate))]
        if ssml:
            argv_options.append("-m")
        key = json.dumps([text, argv_options], ensure_ascii=False)
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        path = self.cache_dir / f"tts-{digest}.wav"
        if path.exists():
            return path
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{secrets.token_hex(6)}.part.wav")
        try:
            await self._run([*argv_options, "-w", str(partial), "--stdin"], text)
            if not partial.exists() or partial.stat().st_size <= 44:
                raise TtsError(f"{self.executable} wrote no audio for {text[:40]!r}")
            partial.replace(path)  # atomic: readers never see a half-written file
        finally:
            partial.unlink(missing_ok=True)
        return path

    async def _resolve_voice(self, language: str, voice_gender: str | None) -> str:
        voice = espeak_voice(language, voice_gender)
        base = voice.split("+")[0]
        voices = await self._available_voices()
        if voices and base not in voices:
            fallback = base.split("-")[0]
            if fallback not in voices:
                raise UnknownLanguage(language, "has no text-to-speech voice on this server")
            voice = fallback + voice[len(base) :]
        return voice

    async def _available_voices(self) -> set[str]:
        """Voice names and languages eSpeak NG knows (`--voices`), read once; empty if it cannot say."""
        if self._voices is None:
            listing = await self._run(["--voices"], None)
            voices: set[str] = set()
            for line in listing.splitlines()[1:]:
                fields = line.split()
                if len(fields) >= 5:
                    voices.add(fields[1].lower())  # language
                    voices.add(fields[4].rsplit("/", 1)[-1].lower())  # voice file name
            self._voices = voices
        return self._voices

    async def _run(self, args: list[str], stdin_text: str | None) -> str:
        try:
            process = await asyncio.create_subprocess_exec(
                self.executable,
                *args,
                stdin=asyncio.subprocess.PIPE if stdin_text is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise TtsError(
                f"text to speech needs {self.executable!r}, which is not installed "
                "(Debian/Ubuntu: apt-get install espeak-ng)"
            ) from None
        except OSError as exc:
            raise TtsError(f"cannot run {self.executable!r}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout_s):
                stdout, stderr = await process.communicate(
                    stdin_text.encode() if stdin_text is not None else None
                )
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            if isinstance(exc, TimeoutError):
                raise TtsError(f"{self.executable} took longer than {self.timeout_s} s") from None
            raise
        if process.returncode != 0:
            message = stderr.decode(errors="replace").strip() or f"exit status {process.returncode}"
            raise TtsError(f"{self.executable} failed: {message}")
        return stdout.decode(errors="replace")
