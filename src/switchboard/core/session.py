"""What the core keeps about a live call beyond its record: its channel, media leg, lock, timers, the
operations running on it, and its own inbox of media events and timer wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from switchboard.core.clock import Cancellable
from switchboard.core.dtmf_capture import DtmfCapture
from switchboard.core.models import Call, InboundTarget
from switchboard.core.ports import CallChannel
from switchboard.core.timers import Deadlines
from switchboard.media.engine import MediaEvent, MediaLeg, RecordingFormat


@dataclass(frozen=True, slots=True)
class RecordingRequest:
    fmt: RecordingFormat = RecordingFormat.WAV
    custom_data: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Playback:
    id: str
    is_say: bool
    custom_data: dict[str, str]
    stop_on: str | None
    captured: str = ""


@dataclass(slots=True)
class Capture:
    machine: DtmfCapture


@dataclass(slots=True)
class Recording:
    id: str
    custom_data: dict[str, str]


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    id: str
    source: InboundTarget | None
    destination: InboundTarget
    custom_data: dict[str, str]


@dataclass(frozen=True, slots=True)
class MediaItem:
    event: MediaEvent


@dataclass(frozen=True, slots=True)
class TimerFired:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    """The call ended and its leg is closed: the inbox takes nothing more."""


InboxItem = MediaItem | TimerFired | Stop
FollowUp = Callable[[], Awaitable[None]]


@dataclass(eq=False, slots=True)
class CallSession:
    call: Call
    leg: MediaLeg
    channel: CallChannel
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    inbox: asyncio.Queue[InboxItem] = field(default_factory=asyncio.Queue)
    deadlines: Deadlines = field(default_factory=Deadlines)
    wakeup: Cancellable | None = None
    armed_at: float | None = None
    remote_sdp: str | None = None
    local_sdp: str | None = None
    pre_answered: bool = False
    playback: Playback | None = None
    capture: Capture | None = None
    recording: Recording | None = None
    record_on_answer: RecordingRequest | None = None
    max_duration_s: int | None = None
    dialog_id: str | None = None
    transfer: PendingTransfer | None = None
    ended: bool = False
    end_stored: bool = False
    """The ended call's final state and CDR are stored; until then the call stays registered."""
    follow_ups: list[FollowUp] = field(default_factory=list)
    """Work that must run once the lock is released (it touches other calls)."""

    @property
    def id(self) -> str:
        return self.call.id
