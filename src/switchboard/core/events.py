"""Typed events of the core. The Calls API maps them to Infobip's event names at its edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from switchboard.core.models import Call, Dialog


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """Base of every event. `call` is a snapshot of the call when the event happened."""

    call: Call
    timestamp: datetime

    @property
    def call_id(self) -> str:
        return self.call.id


@dataclass(frozen=True, slots=True, kw_only=True)
class CallReceived(CallEvent):
    """An inbound call arrived and was handed to an application."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(CallEvent):
    """An outbound call was placed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging(CallEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPreEstablished(CallEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEstablished(CallEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFinished(CallEvent):
    """The call ended after it was answered, or was hung up normally."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailed(CallEvent):
    """The call ended without being answered (FAILED, NO_ANSWER, BUSY, CANCELLED) or failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayFinished(CallEvent):
    operation_id: str
    duration_ms: int
    completed: bool
    captured_dtmf: str | None = None
    custom_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SayFinished(PlayFinished):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfCaptured(CallEvent):
    dtmf: str
    timeout: bool
    custom_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(CallEvent):
    """One key pressed by the peer, whether or not a capture is running."""

    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingReady(CallEvent):
    recording_id: str
    path: Path
    duration_ms: int
    size: int
    custom_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogEvent(CallEvent):
    """Dialog events carry the parent call as `call`."""

    dialog: Dialog


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogCreated(DialogEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogEstablished(DialogEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogFinished(DialogEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogFailed(DialogEvent):
    pass
