"""What every Calls API router needs: its dependencies and a few shared helpers."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Query

from switchboard.apps.calls_api.outbox import Outbox
from switchboard.apps.calls_api.subscriptions import SubscriptionIndex
from switchboard.core.control import CallControl
from switchboard.httpapi.errors import ApiError
from switchboard.httpapi.urls import UnsafeUrl, check_url_target
from switchboard.store.base import Database

log = logging.getLogger(__name__)

MAX_DOWNLOAD = 50 * 1024 * 1024
"""Largest audio file fetched for a URL play (bytes)."""

PageParam = Annotated[int, Query(ge=0, description="Page number, from 0.")]
SizeParam = Annotated[int, Query(ge=1, le=1000, description="Results per page.")]


def _fresh(path: Path, max_age: int | None) -> bool:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return max_age is None or time.time() - mtime < max_age


@dataclass(slots=True)
class Context:
    control: CallControl
    db: Database
    http: httpx.AsyncClient
    files_dir: Path
    allow_private_urls: bool
    clock: Callable[[], datetime]
    subscriptions: SubscriptionIndex
    outbox: Outbox

    @property
    def uploads_dir(self) -> Path:
        return self.files_dir / "uploads"

    @property
    def url_cache_dir(self) -> Path:
        return self.files_dir / "url-cache"

    async def fetch_url(self, url: str, cache_duration: int | None = None) -> Path:
        """Download audio at `url` (SSRF-checked) into the cache and return the local path.

        A cached copy is reused while it is younger than `cache_duration` seconds (always, if None).
        """
        try:
            await check_url_target(url, "content.fileUrl", allow_private=self.allow_private_urls)
        except UnsafeUrl as exc:
            raise ApiError(400, str(exc)) from exc
        key = hashlib.sha256(url.encode()).hexdigest()
        suffix = Path(url.split("?", 1)[0]).suffix.lower()
        suffix = suffix if suffix in (".wav", ".mp3", ".ogg", ".opus", ".flac", ".m4a") else ".audio"
        path = self.url_cache_dir / f"{key}{suffix}"
        if await asyncio.to_thread(_fresh, path, cache_duration):
            return path
        self.url_cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
        try:
            async with self.http.stream("GET", url, timeout=15.0, follow_redirects=False) as resp:
                if resp.status_code != 200:
                    raise ApiError(400, f"content.fileUrl: {url!r} answered HTTP {resp.status_code}")
                size = 0
                with partial.open("wb") as out:
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD:
                            raise ApiError(400, f"content.fileUrl: {url!r} is larger than 50 MB")
                        out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise ApiError(400, f"content.fileUrl: cannot fetch {url!r}: {exc}") from exc
        except ApiError:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)
        return path
