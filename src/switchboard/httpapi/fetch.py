"""Audio at a user-supplied URL (`UrlFetcher`): SSRF-checked, size-capped, cached on disk."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from pathlib import Path

import httpx

from switchboard.errors import SwitchboardError
from switchboard.httpapi.urls import UnsafeUrl, UrlPolicy
from switchboard.media.audio import sniff_container
from switchboard.media.engine import MediaLocator

MAX_DOWNLOAD = 50 * 1024 * 1024
"""Largest audio file fetched for a URL play (bytes)."""
FETCH_TIMEOUT_S = 15.0
_SUFFIXES = (".wav", ".mp3", ".ogg", ".opus", ".flac", ".m4a")


class UrlFetchError(SwitchboardError):
    status_hint = 400


def _fresh(path: Path, max_age: int | None) -> bool:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return max_age is None or time.time() - mtime < max_age


class UrlAudioFetcher:
    def __init__(self, http: httpx.AsyncClient, cache_dir: Path, *, urls: UrlPolicy) -> None:
        self._http = http
        self._cache_dir = cache_dir
        self._urls = urls

    async def fetch(self, url: str, cache_duration_s: int | None) -> MediaLocator:
        """Download audio at `url` into the cache; a copy younger than `cache_duration_s` is reused
        (always, if None)."""
        try:
            await self._urls.check_url(url, "content.fileUrl")
        except UnsafeUrl as exc:
            raise UrlFetchError(str(exc)) from exc
        key = hashlib.sha256(url.encode()).hexdigest()
        suffix = Path(url.split("?", 1)[0]).suffix.lower()
        path = self._cache_dir / f"{key}{suffix if suffix in _SUFFIXES else '.audio'}"
        if not await asyncio.to_thread(_fresh, path, cache_duration_s):
            await self._download(url, path)
        return MediaLocator.for_path(path)

    async def _download(self, url: str, path: Path) -> None:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
        try:
            await self._stream_to(url, partial)
            with partial.open("rb") as downloaded:
                if sniff_container(downloaded.read(16)) is None:
                    raise UrlFetchError(
                        f"content.fileUrl: {url!r} is not audio (WAV, Ogg, FLAC, MP3, AAC or MP4)"
                    )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)

    async def _stream_to(self, url: str, partial: Path) -> None:
        try:
            async with self._http.stream("GET", url, timeout=FETCH_TIMEOUT_S, follow_redirects=False) as resp:
                if resp.status_code != 200:
                    raise UrlFetchError(f"content.fileUrl: {url!r} answered HTTP {resp.status_code}")
                size = 0
                with partial.open("wb") as out:
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD:
                            raise UrlFetchError(f"content.fileUrl: {url!r} is larger than 50 MB")
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise UrlFetchError(f"content.fileUrl: cannot fetch {url!r}: {exc}") from exc
