"""Recordings of routed calls, in Infobip's shape: one result per routed call (its correlation id), with
the files of each recorded call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from switchboard.apps.routing.schemas import (
    CallRecording,
    RecordedFile,
    RecordingApplication,
    RecordingMetadata,
    RecordingResponse,
)
from switchboard.store.routing import RecordingRow


def recorded_file(row: RecordingRow) -> RecordedFile:
    return RecordedFile(
        id=row.file_id,
        name=Path(row.path).name,
        file_format=row.file_format,
        size=row.size,
        start_time=row.start_time,
        end_time=row.end_time,
        creation_time=row.end_time,
        duration=row.duration,
        custom_data=dict(row.custom_data) or None,
    )


def recording_response(rows: Sequence[RecordingRow]) -> RecordingResponse:
    """One routed call's recordings (`rows` share a correlation id)."""
    first = rows[0]
    calls: dict[str, CallRecording] = {}
    for row in rows:
        call = calls.setdefault(
            row.call_id,
            CallRecording(call_id=row.call_id, endpoint=row.endpoint_type, direction="OUTBOUND", files=[]),
        )
        call.files.append(recorded_file(row))
    starts = [r.start_time for r in rows if r.start_time is not None]
    return RecordingResponse(
        application=RecordingApplication(
            route_id=first.route_id,
            route_name=first.route_name,
            correlation_id=first.correlation_id,
            start_time=min(starts) if starts else None,
            end_time=max(r.end_time for r in rows),
        ),
        recording=RecordingMetadata(call_recordings=list(calls.values())),
    )
