"""What every part of call control shares: repositories, media, time, ids, the live calls, publication.

`change(session)` is how every part changes a call: it holds the call's lock for the change, then (lock
released) publishes the events the change queued and runs its follow-ups (work on other calls, such as
ending the other side of a dialog). See `core.events` for what this means to handlers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from copy import copy
from dataclasses import dataclass, field
from typing import Any

from switchboard.core import events as ev
from switchboard.core.admission import Admission
from switchboard.core.clock import Clock
from switchboard.core.content import ContentResolver
from switchboard.core.errors import CallNotFound, InvalidCallState, UnsupportedEndpoint
from switchboard.core.jobs import JobRunner
from switchboard.core.models import Call, Dialog, EndpointType
from switchboard.core.ports import CallChannel, CallRepository, DialogRepository
from switchboard.core.publisher import EventPublisher
from switchboard.core.registry import CallRegistry
from switchboard.core.session import CallSession, InboxItem, MediaItem, TimerFired
from switchboard.media.engine import MediaEngine, MediaLocator, RecordingFormat

RecordingTargets = Callable[[str, str, RecordingFormat], MediaLocator]
"""(call id, recording id, format) → where the engine writes the recording."""


def new_id() -> str:
    return str(uuid.uuid4())


def snapshot(call: Call) -> Call:
    snap = copy(call)
    snap.custom_data = dict(call.custom_data)
    snap.media = dict(call.media)
    snap.targets = list(call.targets)
    return snap


@dataclass(slots=True)
class Services:
    calls: CallRepository
    dialogs: DialogRepository
    media: MediaEngine
    clock: Clock
    registry: CallRegistry
    publisher: EventPublisher
    admission: Admission
    content: ContentResolver
    recording_targets: RecordingTargets
    jobs: JobRunner
    ids: Callable[[], str] = new_id
    channels: dict[EndpointType, CallChannel] = field(default_factory=dict)

    # -- finding calls -------------------------------------------------------------------------------

    async def live(self, call_id: str) -> CallSession:
        """The live session of `call_id`: `CallNotFound`, or `InvalidCallState` if it has ended."""
        session = self.registry.get(call_id)
        if session is not None:
            return session
        call = await self.calls.get(call_id)
        if call is None:
            raise CallNotFound(call_id)
        raise InvalidCallState(call_id, call.state.value, "act on")

    def channel_for(self, endpoint_type: EndpointType) -> CallChannel:
        channel = self.channels.get(endpoint_type)
        if channel is None:
            raise UnsupportedEndpoint(endpoint_type.value)
        return channel

    async def open_session(self, call: Call, channel: CallChannel) -> CallSession:
        """A live session for a new call: its media leg (events into the call's own inbox) and executor."""
        inbox: asyncio.Queue[InboxItem] = asyncio.Queue()
        leg = await self.media.create_leg(
            call.id, lambda event: inbox.put_nowait(MediaItem(event)), channel.leg_spec(call)
        )
        session = CallSession(call=call, leg=leg, channel=channel, inbox=inbox)
        self.registry.add(session)
        return session

    # -- changing calls --------------------------------------------------------------------------------

    @asynccontextmanager
    async def change(self, session: CallSession) -> AsyncIterator[CallSession]:
        try:
            async with session.lock:
                yield session
                self.arm(session)
        finally:
            try:
                await self.publisher.flush(session.id)
            finally:
                # A durable handler's failure fails the action, not the calls it touches.
                follow_ups, session.follow_ups = session.follow_ups, []
                for follow_up in follow_ups:
                    await follow_up()

    def emit(self, call: Call, event_type: type[ev.CallEvent], **fields: Any) -> None:
        """Queue an event about `call` (published when the change that queued it is done)."""
        event = event_type(call=snapshot(call), timestamp=self.clock.now(), **fields)
        self.publisher.queue(call.id, event)

    def emit_dialog(self, parent: Call, event_type: type[ev.DialogEvent], dialog: Dialog) -> None:
        event = event_type(call=snapshot(parent), timestamp=self.clock.now(), dialog=copy(dialog))
        self.publisher.queue(parent.id, event)

    def arm(self, session: CallSession) -> None:
        """Keep one wake-up armed for the call's earliest deadline."""
        waiting = not session.ended or not session.end_stored
        deadline = session.deadlines.next() if waiting else None
        if deadline == session.armed_at:
            return
        if session.wakeup is not None:
            session.wakeup.cancel()
            session.wakeup = None
        session.armed_at = deadline
        if deadline is not None:
            inbox = session.inbox
            session.wakeup = self.clock.call_at(deadline, lambda: inbox.put_nowait(TimerFired()))
