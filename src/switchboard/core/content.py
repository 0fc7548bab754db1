"""Audio content for every application: what a play or say names, resolved to what the media engine plays.

An application names content (an uploaded file, a recording, a URL, text to speak, a tone); `CallControl`
resolves it through `ContentResolver`, whose sources are ports: stored audio (the store), URLs (fetched
with the SSRF guard and cached) and speech (TTS). No application fetches or synthesises audio itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from switchboard.core.errors import NotFound
from switchboard.media.engine import AudioSource, MediaLocator, Tone


@dataclass(frozen=True, slots=True)
class FileContent:
    """An uploaded audio file (Infobip's `FILE` content, `fileId`)."""

    file_id: str


@dataclass(frozen=True, slots=True)
class RecordingContent:
    """A recording file made on a call (Infobip's `RECORDING` content, `fileId`)."""

    file_id: str


@dataclass(frozen=True, slots=True)
class UrlContent:
    url: str
    cache_duration_s: int | None = None
    """Reuse a fetched copy younger than this (always, if None)."""


@dataclass(frozen=True, slots=True)
class SpeechContent:
    text: str
    language: str = "en"
    speech_rate: float = 1.0
    voice_gender: str | None = None


Content = FileContent | RecordingContent | UrlContent | SpeechContent | Tone


class AudioStore(Protocol):
    async def locate_file(self, file_id: str) -> MediaLocator | None: ...

    async def locate_recording(self, file_id: str) -> MediaLocator | None: ...


class UrlFetcher(Protocol):
    async def fetch(self, url: str, cache_duration_s: int | None) -> MediaLocator:
        """Fetch (or reuse a cached copy of) audio at `url`; raises a `SwitchboardError` saying why not."""


class Synthesizer(Protocol):
    async def synthesize(
        self, text: str, *, language: str, speech_rate: float, voice_gender: str | None
    ) -> MediaLocator: ...


class ContentResolver:
    def __init__(self, store: AudioStore, urls: UrlFetcher, speech: Synthesizer) -> None:
        self._store = store
        self._urls = urls
        self._speech = speech

    async def resolve(self, content: Content) -> AudioSource:
        match content:
            case FileContent(file_id=file_id):
                found = await self._store.locate_file(file_id)
                if found is None:
                    raise NotFound(f"content.fileId: file {file_id!r} not found")
                return found
            case RecordingContent(file_id=file_id):
                found = await self._store.locate_recording(file_id)
                if found is None:
                    raise NotFound(f"content.fileId: recording file {file_id!r} not found")
                return found
            case UrlContent(url=url, cache_duration_s=cache):
                return await self._urls.fetch(url, cache)
            case SpeechContent():
                return await self._speech.synthesize(
                    content.text,
                    language=content.language,
                    speech_rate=content.speech_rate,
                    voice_gender=content.voice_gender,
                )
            case Tone():
                return content
