"""Stored audio (`AudioStore`): uploaded files and call recordings, found by id."""

from __future__ import annotations

from pathlib import Path

from switchboard.media.engine import MediaLocator
from switchboard.store.base import Database
from switchboard.store.calls_api import CallRecordingRow, CallsFileRow


class SqlAudioStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def locate_file(self, file_id: str) -> MediaLocator | None:
        async with self._db.session() as s:
            row = await s.get(CallsFileRow, file_id)
        return MediaLocator.for_path(Path(row.path)) if row is not None else None

    async def locate_recording(self, file_id: str) -> MediaLocator | None:
        async with self._db.session() as s:
            row = await s.get(CallRecordingRow, file_id)
        return MediaLocator.for_path(Path(row.path)) if row is not None else None
