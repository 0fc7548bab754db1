"""Audio files (`/calls/1/files`) and call recordings (`/calls/1/recordings`).

Uploads are stored under `files_dir/uploads`; recordings stay where the media engine wrote them and are
indexed when the core reports `RecordingReady`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from sqlalchemy import delete, func, select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard.apps.calls_api.context import Context, PageParam, SizeParam
from switchboard.apps.calls_api.mapping import endpoint_model, platform_model
from switchboard.apps.calls_api.schemas import (
    CallRecordingModel,
    CallRecordingPage,
    CallsFileModel,
    CallsFilePage,
    Paging,
    RecordingFileModel,
)
from switchboard.core.errors import SwitchboardError
from switchboard.httpapi.errors import ApiError
from switchboard.httpapi.limits import BodyTooLarge
from switchboard.media.audio import probe_audio, sniff_container
from switchboard.store.calls_api import CallRecordingRow, CallsFileRow, utc

UPLOAD_COPY_CHUNK = 1024 * 1024
MEDIA_TYPES = {"WAV": "audio/wav", "OGG": "audio/ogg", "MP3": "audio/mpeg", "MP4": "audio/mp4"}

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


UPLOAD_FORMATS = {"wav": "WAV", "mp3": "MP3", "ogg": "OGG", "mp4": "MP4"}


def sniff_format(data: bytes) -> str | None:
    """WAV, MP3, OGG or MP4 from the first bytes; the file's name does not count."""
    return UPLOAD_FORMATS.get(sniff_container(data[:16]) or "")


async def received_file(request: Request) -> tuple[str, IO[bytes], int]:
    """(filename, open file, size) of the `file` part of a multipart/form-data upload.

    The part is streamed to a temporary file as it arrives (the body limit applies while it is read);
    the file is closed with the request.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "upload the audio as multipart/form-data with a 'file' part")
    try:
        form = await request.form(max_files=1, max_fields=16)
    except BodyTooLarge:
        raise
    except StarletteHTTPException as exc:
        raise ApiError(400, f"file: the multipart body could not be parsed: {exc.detail}") from None
    part = form.get("file")
    if not isinstance(part, UploadFile):
        raise ApiError(400, "file: field required")
    return part.filename or "audio", part.file, part.size or 0


def _store(source: IO[bytes], path: Path) -> None:
    source.seek(0)
    partial = path.with_name(f"{path.name}.part")
    try:
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, UPLOAD_COPY_CHUNK)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _head(source: IO[bytes]) -> bytes:
    source.seek(0)
    return source.read(16)


async def _unlink(path: str) -> None:
    await asyncio.to_thread(Path(path).unlink, missing_ok=True)


def _file(row: CallsFileRow) -> CallsFileModel:
    return CallsFileModel(
        id=row.id,
        name=row.name,
        file_format=row.file_format,
        size=row.size,
        creation_method=row.creation_method,
        creation_time=utc(row.created_at),
        duration=row.duration,
    )


def _recording_file(row: CallRecordingRow) -> RecordingFileModel:
    import json

    return RecordingFileModel(
        id=row.id,
        name=Path(row.path).name,
        file_format=row.file_format,
        size=row.size,
        creation_time=utc(row.end_time),
        duration=row.duration,
        start_time=utc(row.start_time) if row.start_time else None,
        end_time=utc(row.end_time),
        custom_data=json.loads(row.custom_data) or None,
    )


def build_router(ctx: Context) -> APIRouter:
    router = APIRouter()

    # -- files ---------------------------------------------------------------------------------------

    @router.post(
        "/calls/1/files",
        response_model=CallsFileModel,
        response_model_exclude_none=True,
        tags=["files"],
        summary="Upload an audio file (multipart/form-data, part 'file')",
        openapi_extra=UPLOAD_OPENAPI,
    )
    async def upload_file(request: Request) -> CallsFileModel:
        name, data, size = await received_file(request)
        if not size:
            raise ApiError(400, "file: the file is empty")
        fmt = sniff_format(await asyncio.to_thread(_head, data))
        if fmt is None:
            raise ApiError(400, f"file: {name!r} is not WAV, MP3, OGG or MP4 audio")
        file_id = str(uuid.uuid4())
        ctx.uploads_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.uploads_dir / f"{file_id}.{fmt.lower()}"
        await asyncio.to_thread(_store, data, path)
        try:
            probe = await asyncio.to_thread(probe_audio, path)
        except SwitchboardError as exc:
            await _unlink(str(path))
            raise ApiError(400, f"file: {name!r} is not playable {fmt} audio: {exc}") from None
        duration = round(probe.duration_s) if probe.duration_s is not None else None
        row = CallsFileRow(
            id=file_id,
            name=name,
            file_format=fmt,
            size=size,
            duration=duration,
            path=str(path),
            creation_method="UPLOADED",
            created_at=ctx.clock(),
        )
        async with ctx.db.session() as s:
            s.add(row)
        return _file(row)

    @router.get(
        "/calls/1/files",
        response_model=CallsFilePage,
        response_model_exclude_none=True,
        tags=["files"],
        summary="List audio files",
    )
    async def list_files(page: PageParam = 0, size: SizeParam = 20) -> CallsFilePage:
        async with ctx.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(CallsFileRow)) or 0
            rows = await s.scalars(
                select(CallsFileRow)
                .order_by(CallsFileRow.created_at.desc(), CallsFileRow.id)
                .offset(page * size)
                .limit(size)
            )
            results = [_file(r) for r in rows]
        return CallsFilePage(results=results, paging=Paging.of(page, size, total))

    @router.get(
        "/calls/1/files/{fileId}",
        response_model=CallsFileModel,
        response_model_exclude_none=True,
        tags=["files"],
        summary="Get an audio file's metadata",
    )
    async def get_file(fileId: str) -> CallsFileModel:
        async with ctx.db.session() as s:
            row = await s.get(CallsFileRow, fileId)
        if row is None:
            raise ApiError(404, f"file {fileId!r} not found")
        return _file(row)

    @router.delete(
        "/calls/1/files/{fileId}",
        response_model=CallsFileModel,
        response_model_exclude_none=True,
        tags=["files"],
        summary="Delete an audio file",
    )
    async def delete_file(fileId: str) -> CallsFileModel:
        async with ctx.db.session() as s:
            row = await s.get(CallsFileRow, fileId)
            if row is None:
                raise ApiError(404, f"file {fileId!r} not found")
            await s.delete(row)
        await _unlink(row.path)
        return _file(row)

    # -- recordings ----------------------------------------------------------------------------------

    async def call_recording(call_id: str, rows: list[CallRecordingRow]) -> CallRecordingModel:
        model = CallRecordingModel(
            call_id=call_id,
            files=[_recording_file(r) for r in rows],
            calls_configuration_id=rows[0].calls_configuration_id if rows else None,
            start_time=min((utc(r.start_time) for r in rows if r.start_time), default=None),
            end_time=max((utc(r.end_time) for r in rows), default=None),
        )
        with contextlib.suppress(SwitchboardError):
            call = await ctx.control.get_call(call_id)
            model.endpoint = endpoint_model(call.endpoint)
            model.direction = call.direction
            model.platform = platform_model(call)
        return model

    async def rows_of(call_id: str) -> list[CallRecordingRow]:
        async with ctx.db.session() as s:
            rows = list(
                await s.scalars(
                    select(CallRecordingRow)
                    .where(CallRecordingRow.call_id == call_id)
                    .order_by(CallRecordingRow.end_time)
                )
            )
        if not rows:
            raise ApiError(404, f"no recordings of call {call_id!r}")
        return rows

    @router.get(
        "/calls/1/recordings/calls",
        response_model=CallRecordingPage,
        response_model_exclude_none=True,
        tags=["recordings"],
        summary="List call recordings",
    )
    async def list_recordings(page: PageParam = 0, size: SizeParam = 20) -> CallRecordingPage:
        async with ctx.db.session() as s:
            total = await s.scalar(select(func.count(func.distinct(CallRecordingRow.call_id)))) or 0
            ids = list(
                await s.scalars(
                    select(CallRecordingRow.call_id)
                    .group_by(CallRecordingRow.call_id)
                    .order_by(func.max(CallRecordingRow.end_time).desc())
                    .offset(page * size)
                    .limit(size)
                )
            )
        results = [await call_recording(call_id, await rows_of(call_id)) for call_id in ids]
        return CallRecordingPage(results=results, paging=Paging.of(page, size, total))

    @router.get(
        "/calls/1/recordings/calls/{callId}",
        response_model=CallRecordingModel,
        response_model_exclude_none=True,
        tags=["recordings"],
        summary="Get a call's recordings",
    )
    async def get_call_recordings(callId: str) -> CallRecordingModel:
        return await call_recording(callId, await rows_of(callId))

    @router.delete(
        "/calls/1/recordings/calls/{callId}",
        response_model=CallRecordingModel,
        response_model_exclude_none=True,
        tags=["recordings"],
        summary="Delete a call's recordings",
    )
    async def delete_call_recordings(callId: str) -> CallRecordingModel:
        rows = await rows_of(callId)
        model = await call_recording(callId, rows)
        async with ctx.db.session() as s:
            await s.execute(delete(CallRecordingRow).where(CallRecordingRow.call_id == callId))
        for row in rows:
            await _unlink(row.path)
        return model

    async def recording_row(file_id: str) -> CallRecordingRow:
        async with ctx.db.session() as s:
            row = await s.get(CallRecordingRow, file_id)
        if row is None:
            raise ApiError(404, f"recording file {file_id!r} not found")
        return row

    @router.get(
        "/calls/1/recordings/files/{fileId}",
        response_class=FileResponse,
        tags=["recordings"],
        summary="Download a recording file (audio/wav or audio/ogg)",
    )
    async def download_recording(fileId: str) -> FileResponse:
        row = await recording_row(fileId)
        path = Path(row.path)
        if not await asyncio.to_thread(path.exists):
            raise ApiError(404, f"recording file {fileId!r} is missing on disk")
        return FileResponse(
            path,
            media_type=MEDIA_TYPES.get(row.file_format, "application/octet-stream"),
            filename=path.name,
        )

    @router.delete(
        "/calls/1/recordings/files/{fileId}",
        response_model=RecordingFileModel,
        response_model_exclude_none=True,
        tags=["recordings"],
        summary="Delete a recording file",
    )
    async def delete_recording_file(fileId: str) -> RecordingFileModel:
        row = await recording_row(fileId)
        async with ctx.db.session() as s:
            await s.execute(delete(CallRecordingRow).where(CallRecordingRow.id == fileId))
        await _unlink(row.path)
        return _recording_file(row)

    return router
