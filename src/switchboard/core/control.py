"""`CallControl`: the one API through which channels report and applications act on calls.

A thin facade over the parts of call control: `lifecycle` (arrive, ring, answer, end), `operations`
(play, say, capture, record), `outbound` (place calls), `dialogs` (bridge, unbridge), `transfers` (hand a
call to another application) and `admission` (targets, policies). Every change is saved and its events
are published after the call's lock is released, before the method returns; the handler contract is in
`core.events`. `run()` owns every call's executor (media events and timers, one call at a time each).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from switchboard.core.admission import Admission, OutboundPolicy
from switchboard.core.bus import EventBus
from switchboard.core.clock import Clock, LoopClock
from switchboard.core.content import Content, ContentResolver, SpeechContent
from switchboard.core.dialogs import Dialogs
from switchboard.core.errors import CallNotFound
from switchboard.core.far_end import FarEndHangups
from switchboard.core.jobs import JobRunner
from switchboard.core.lifecycle import InboundCall, Lifecycle
from switchboard.core.models import (
    Call,
    CallState,
    Dialog,
    Direction,
    EndpointType,
    ErrorCode,
    HangupSource,
    InboundTarget,
)
from switchboard.core.operations import Operations
from switchboard.core.outbound import CallRequest, Outbound
from switchboard.core.ports import Application, CallChannel, CallRepository, DialogRepository, JobQueue
from switchboard.core.publisher import EventPublisher
from switchboard.core.registry import CallRegistry, RemoteAnswered, RemoteHangup, RemoteRinging
from switchboard.core.services import RecordingTargets, Services, new_id, snapshot
from switchboard.core.session import CallSession, InboxItem, MediaItem, RecordingRequest, TimerFired
from switchboard.core.timers import TimerKind
from switchboard.core.transfers import Transfers
from switchboard.media.engine import (
    DtmfReceived,
    DtmfSource,
    MediaClosed,
    MediaEngine,
    MediaFailed,
    MediaStarted,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
)

log = logging.getLogger(__name__)

__all__ = ["CallControl", "CallRequest", "InboundCall", "RecordingRequest"]


class CallControl:
    def __init__(
        self,
        *,
        calls: CallRepository,
        dialogs: DialogRepository,
        bus: EventBus,
        media: MediaEngine,
        content: ContentResolver,
        recording_targets: RecordingTargets,
        jobs: JobQueue,
        clock: Clock | None = None,
        ids: Callable[[], str] = new_id,
        shutdown_grace_s: float = 5.0,
    ) -> None:
        self.admission = Admission()
        clock = clock or LoopClock()
        self.jobs = JobRunner(jobs, clock)
        self._shutdown_grace_s = shutdown_grace_s
        self._s = Services(
            calls=calls,
            dialogs=dialogs,
            media=media,
            clock=clock,
            registry=CallRegistry(self._handle),
            publisher=EventPublisher(bus),
            admission=self.admission,
            content=content,
            recording_targets=recording_targets,
            jobs=self.jobs,
            ids=ids,
        )
        far_end = FarEndHangups(calls, self._s.channels, self.jobs)
        self.jobs.register(far_end)
        self.operations = Operations(self._s)
        self.lifecycle = Lifecycle(self._s, self.operations, far_end)
        self.outbound = Outbound(self._s, self.lifecycle)
        self.dialogs = Dialogs(self._s, self.lifecycle, self.outbound)
        self.transfers = Transfers(self._s, self.lifecycle)

    # -- wiring ------------------------------------------------------------------------------------------

    def register_channel(self, channel: CallChannel) -> None:
        self._s.channels[channel.endpoint_type] = channel

    def register_application(self, application: Application) -> None:
        """An application declares that it takes calls handed to its inbound action."""
        self.admission.register_application(application)

    def add_outbound_policy(self, endpoint_type: EndpointType, rule: OutboundPolicy) -> None:
        self.admission.add_outbound_policy(endpoint_type, rule)

    async def run(self) -> None:
        """Run every call's executor and the durable jobs until cancelled. The composition root owns
        this task."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._s.registry.run())
            tasks.create_task(self.jobs.run())
            tasks.create_task(self._s.publisher.retry_failed(self._s.clock))

    @property
    def running(self) -> bool:
        return self._s.registry.running

    async def started(self) -> None:
        """Return once `run` is taking calls."""
        await self._s.registry.started()

    async def recover(self) -> None:
        """End what this server left live when it last stopped without ending it (a crash)."""
        ended = await self.lifecycle.recover()
        await self.dialogs.recover({call.id for call in ended})

    async def adopt(self, node_id: str) -> list[Call]:
        """End the calls of `node_id`, another server that stopped (its heartbeat ran out), as `recover`
        ends this server's own; each call is adopted by one server only."""
        adopted = await self._s.calls.adopt(node_id)
        ended = await self.lifecycle.recover(adopted)
        await self.dialogs.recover({call.id for call in ended})
        return ended

    async def shutdown(self) -> None:
        """End every live call; far ends not told within the grace time are told at the next start."""
        await self.lifecycle.shutdown(self._shutdown_grace_s)

    # -- queries (reading never changes a call) ---------------------------------------------------------

    async def get_call(self, call_id: str) -> Call:
        session = self._s.registry.get(call_id)
        if session is not None:
            return _live_view(session)
        call = await self._s.calls.get(call_id)
        if call is None:
            raise CallNotFound(call_id)
        return call

    async def get_dialog(self, dialog_id: str) -> Dialog:
        return await self.dialogs.get(dialog_id)

    async def list_calls(
        self,
        *,
        active: bool | None = None,
        calls_configuration_id: str | None = None,
        state: CallState | None = None,
        direction: Direction | None = None,
        page: int = 0,
        size: int = 20,
    ) -> tuple[list[Call], int]:
        """Stored calls matching the filters, newest first; live ones with their current media."""
        calls, total = await self._s.calls.list(
            active=active,
            calls_configuration_id=calls_configuration_id,
            state=state,
            direction=direction,
            page=page,
            size=size,
        )
        registry = self._s.registry
        return [_live_view(session) if (session := registry.get(c.id)) else c for c in calls], total

    async def list_dialogs(
        self, *, active: bool | None = None, page: int = 0, size: int = 20
    ) -> tuple[list[Dialog], int]:
        dialogs, total = await self._s.dialogs.list(active=active, page=page, size=size)
        return list(dialogs), total

    async def publish_pending(self, call_id: str) -> None:
        """Give a call's events that could not be stored to their store again (raises if it still
        fails); the call's next change does this too."""
        await self._s.publisher.flush(call_id)

    def is_live(self, call_id: str) -> bool:
        return call_id in self._s.registry

    # -- channel side: what peers do --------------------------------------------------------------------

    async def receive_inbound(self, inbound: InboundCall) -> Call | None:
        return await self.lifecycle.receive_inbound(inbound)

    async def remote_ringing(self, peer_call_id: str, *, call_hint: str | None = None) -> None:
        await self.lifecycle.remote_signal(peer_call_id, RemoteRinging(), call_hint=call_hint)

    async def remote_answered(
        self, peer_call_id: str, sdp_answer: str, *, call_hint: str | None = None
    ) -> None:
        await self.lifecycle.remote_signal(peer_call_id, RemoteAnswered(sdp_answer), call_hint=call_hint)

    async def remote_hangup(
        self,
        peer_call_id: str,
        *,
        code: ErrorCode = ErrorCode.NORMAL_HANGUP,
        description: str = "",
        call_hint: str | None = None,
    ) -> None:
        await self.lifecycle.remote_signal(peer_call_id, RemoteHangup(code, description), call_hint=call_hint)

    def remote_dtmf(self, peer_call_id: str, digit: str, duration_ms: int) -> bool:
        """A key the far end sent in its signalling (SIP INFO): it reaches the call as a media key does.
        False when no live call has `peer_call_id`."""
        session = self._s.registry.by_peer(peer_call_id)
        if session is None:
            return False
        event = DtmfReceived(session.id, digit, duration_ms, DtmfSource.SIGNALLING)
        session.inbox.put_nowait(MediaItem(event))
        return True

    def was_ended_early(self, peer_call_id: str) -> bool:
        return self.lifecycle.was_ended_early(peer_call_id)

    # -- application side: call actions -----------------------------------------------------------------

    async def send_ringing(self, call_id: str) -> Call:
        return await self.lifecycle.send_ringing(call_id)

    async def pre_answer(self, call_id: str) -> Call:
        return await self.lifecycle.pre_answer(call_id)

    async def answer(self, call_id: str) -> Call:
        return await self.lifecycle.answer(call_id)

    async def hangup(
        self,
        call_id: str,
        *,
        source: HangupSource = HangupSource.API,
        code: ErrorCode = ErrorCode.NORMAL_HANGUP,
        description: str = "hung up through the API",
    ) -> Call:
        return await self.lifecycle.hangup(call_id, source=source, code=code, description=description)

    async def play(
        self,
        call_id: str,
        content: Content,
        *,
        loop_count: int = 1,
        stop_on_terminator: str | None = None,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        return await self.operations.play(
            call_id,
            content,
            loop_count=loop_count,
            stop_on_terminator=stop_on_terminator,
            custom_data=custom_data,
        )

    async def say(
        self,
        call_id: str,
        text: str,
        *,
        language: str = "en",
        speech_rate: float = 1.0,
        voice_gender: str | None = None,
        loop_count: int = 1,
        stop_on_terminator: str | None = None,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        return await self.play(
            call_id,
            SpeechContent(text, language, speech_rate, voice_gender),
            loop_count=loop_count,
            stop_on_terminator=stop_on_terminator,
            custom_data=custom_data,
        )

    async def stop_play(self, call_id: str) -> Call:
        await self.operations.stop_play(call_id)
        return await self.get_call(call_id)

    async def capture_dtmf(
        self,
        call_id: str,
        *,
        max_length: int,
        timeout_ms: int,
        terminator: str | None = None,
        digit_timeout_ms: int | None = None,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        return await self.operations.capture_dtmf(
            call_id,
            max_length=max_length,
            timeout_ms=timeout_ms,
            terminator=terminator,
            digit_timeout_ms=digit_timeout_ms,
            custom_data=custom_data,
        )

    async def send_dtmf(self, call_id: str, digits: str) -> Call:
        await self.operations.send_dtmf(call_id, digits)
        return await self.get_call(call_id)

    async def start_recording(
        self,
        call_id: str,
        *,
        fmt: RecordingFormat = RecordingFormat.WAV,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        return await self.operations.start_recording(call_id, fmt=fmt, custom_data=custom_data)

    async def stop_recording(self, call_id: str) -> Call:
        await self.operations.stop_recording(call_id)
        return await self.get_call(call_id)

    async def create_call(self, request: CallRequest) -> Call:
        return snapshot(await self.outbound.create_call(request))

    async def connect(self, parent_call_id: str, child: CallRequest | str) -> Dialog:
        return await self.dialogs.connect(parent_call_id, child)

    async def unbridge(self, dialog_id: str) -> Dialog:
        return await self.dialogs.unbridge(dialog_id)

    async def hangup_dialog(self, dialog_id: str) -> Dialog:
        return await self.dialogs.hangup(dialog_id)

    async def transfer(
        self,
        call_id: str,
        destination: InboundTarget,
        *,
        timeout_s: float = 30.0,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        return await self.transfers.transfer(
            call_id, destination, timeout_s=timeout_s, custom_data=custom_data
        )

    async def accept_transfer(self, call_id: str, transfer_id: str) -> None:
        await self.transfers.accept(call_id, transfer_id)

    async def reject_transfer(self, call_id: str, transfer_id: str) -> None:
        await self.transfers.reject(call_id, transfer_id)

    # -- each call's executor: media events and timers -----------------------------------------------

    async def _handle(self, session: CallSession, item: InboxItem) -> None:
        async with self._s.change(session):
            match item:
                case MediaItem(event=event):
                    await self._on_media(session, event)
                case TimerFired():
                    session.wakeup = session.armed_at = None
                    for kind in session.deadlines.pop_due(self._s.clock.monotonic()):
                        await self._on_timer(session, kind)

    async def _on_media(self, session: CallSession, event: object) -> None:
        if isinstance(event, RecordingFinished):
            self.operations.on_recording_finished(session, event)
            return
        if session.ended:
            return
        match event:
            case MediaStarted():
                log.info("media of call %s started", session.id)
            case MediaClosed():
                self.lifecycle.media_closed(session)
            case MediaFailed(reason=reason):
                await self.lifecycle.end(session, ErrorCode.MEDIA_FAILURE, reason)
            case DtmfReceived():
                await self.operations.on_dtmf(session, event)
            case PlaybackFinished():
                self.operations.on_playback_finished(session, event)

    async def _on_timer(self, session: CallSession, kind: TimerKind) -> None:
        if kind is TimerKind.STORE_END:
            await self.lifecycle.store_end_again(session)
            return
        if session.ended:
            return
        match kind:
            case TimerKind.CAPTURE:
                self.operations.on_capture_timer(session)
            case TimerKind.TRANSFER:
                self.transfers.on_timeout(session)
            case _:
                await self.lifecycle.on_timer(session, kind)


def _live_view(session: CallSession) -> Call:
    view = snapshot(session.call)
    view.media = session.leg.diagnostics().as_dict()
    return view
