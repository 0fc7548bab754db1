"""Typed events of the core. The Calls API maps them to Infobip's event names at its edge.

The handler contract (what a bus handler may rely on):
- An event is published after the change it reports is saved and the call's lock is released, so a handler
  may call `CallControl` on the same call: answer on `CallReceived`, say on `CallEstablished`, transfer on
  `DtmfCaptured`, hang up on `TransferFailed`.
- Order: one call's events reach every handler in the order they happened. An action taken inside a
  handler returns at once; its events follow once the current event has reached every handler.
- An action taken anywhere else returns only after its events have been handled, so a durable handler (the
  Calls API's outbox) has stored them before the action is acknowledged.
- A handler that raises: a durable handler's error fails the action that caused the event (nothing is lost
  silently); any other handler's error is logged and the event still reaches the others.
- Media events and timers of a call run one at a time on that call's own executor; a slow handler or a
  slow peer delays only its own call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from switchboard.core.models import Call, Dialog, InboundTarget


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


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogUnbridged(DialogEvent):
    """The dialog's two calls were separated; both go on, each with its application."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferEvent(CallEvent):
    """An application transfer of `call` from `source` to `destination`."""

    transfer_id: str
    source: InboundTarget | None
    destination: InboundTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRequested(TransferEvent):
    """The destination application is asked to take the call; it accepts or rejects the transfer."""

    custom_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFinished(TransferEvent):
    """The destination accepted: it has the call now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFailed(TransferEvent):
    """Rejected, timed out or the call ended: the call stays with the source application."""

    reason: str
