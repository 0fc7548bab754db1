"""`CallControl`: the one API through which every application drives calls.

Channels report what their peers do (`receive_inbound`, `remote_ringing`, `remote_answered`,
`remote_hangup`); applications act (`answer`, `play`, `capture_dtmf`, `connect`, `create_call`, ...).
Every change is saved and published on the event bus before the method returns, so an application that
stores events (the Calls API's outbox) has them stored before the action is acknowledged.

Media events arrive from the engine's callbacks; they are queued and handled by `run()`, the one
background task of this object, which the composition root owns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from switchboard.core import events as ev
from switchboard.core import policy
from switchboard.core import state as st
from switchboard.core.bus import EventBus
from switchboard.core.dtmf_capture import CaptureResult, DtmfCapture
from switchboard.core.errors import (
    CallNotFound,
    ChannelError,
    DialogNotFound,
    InvalidCallState,
    MediaError,
    SwitchboardError,
    UnsupportedEndpoint,
)
from switchboard.core.models import (
    Call,
    CallState,
    Dialog,
    DialogState,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    HangupSource,
    InboundAction,
    InboundConfiguration,
)
from switchboard.core.ports import (
    CallChannel,
    CallRepository,
    DialogRepository,
    PermissionRecord,
    PermissionRepository,
    SenderDirectory,
)
from switchboard.media.engine import (
    WHATSAPP_LEG,
    AudioSource,
    DtmfReceived,
    MediaClosed,
    MediaEngine,
    MediaEvent,
    MediaFailed,
    MediaLeg,
    MediaLocator,
    MediaStarted,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
)

log = logging.getLogger(__name__)

MEDIA_CLOSED_GRACE_S = 5.0
"""After a peer closes its media cleanly, how long to wait for its signalling to end the call."""


class Synthesizer(Protocol):
    async def synthesize(
        self, text: str, *, language: str, speech_rate: float, voice_gender: str | None
    ) -> Path: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class _Playback:
    id: str
    is_say: bool
    custom_data: dict[str, str]
    stop_on: str | None
    captured: str = ""


@dataclass(slots=True)
class _Session:
    """What the core keeps about a live call beyond its record: media, pending operations."""

    call: Call
    leg: MediaLeg
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    remote_sdp: str | None = None
    local_sdp: str | None = None
    pre_answered: bool = False
    playback: _Playback | None = None
    capture: DtmfCapture | None = None
    capture_timer: asyncio.TimerHandle | None = None
    connect_timer: asyncio.TimerHandle | None = None
    media_closed_timer: asyncio.TimerHandle | None = None
    max_duration_s: int | None = None
    max_duration_timer: asyncio.TimerHandle | None = None
    record_on_answer: RecordingRequest | None = None
    recording: str | None = None
    """The id of the recording running on the call's leg."""
    dialog_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingRequest:
    fmt: RecordingFormat = RecordingFormat.WAV
    custom_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallRequest:
    endpoint: Endpoint
    from_: str
    calls_configuration_id: str | None = None
    application_id: str | None = None
    connect_timeout_s: int = 60
    max_duration_s: int | None = None
    """Hang up this long after the call is answered (Infobip's `maxDuration`)."""
    record: RecordingRequest | None = None
    """Record the call from the moment it is answered (Infobip's `recording`)."""
    custom_data: dict[str, str] = field(default_factory=dict)
    parent_call_id: str | None = None
    external_id: str | None = None
    """The application's own id for the call (Infobip's `externalId`), echoed on the call."""


class CallControl:
    def __init__(
        self,
        *,
        calls: CallRepository,
        dialogs: DialogRepository,
        permissions: PermissionRepository,
        senders: SenderDirectory,
        bus: EventBus,
        media: MediaEngine,
        synthesizer: Synthesizer,
        recordings_dir: Path,
        clock: Callable[[], datetime] = utcnow,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self._calls = calls
        self._dialogs = dialogs
        self._permissions = permissions
        self._senders = senders
        self._bus = bus
        self._media = media
        self._tts = synthesizer
        self._recordings_dir = recordings_dir
        self._now = clock
        self._ids = ids
        self._channels: dict[EndpointType, CallChannel] = {}
        self._inbound_actions: set[InboundAction] = set()
        self._sessions: dict[str, _Session] = {}
        self._recordings: dict[str, dict[str, str]] = {}
        """Custom data of each recording until its file is complete."""
        self._by_peer: dict[str, str] = {}
        self._early: dict[str, list[tuple[float, str, tuple[object, ...]]]] = {}
        self._queue: asyncio.Queue[MediaEvent | tuple[str, str]] = asyncio.Queue()

    # -- wiring ------------------------------------------------------------------------------------

    def register_channel(self, channel: CallChannel) -> None:
        self._channels[channel.endpoint_type] = channel

    def accept_inbound_action(self, action: InboundAction) -> None:
        """An application declares that it takes inbound calls forwarded with `action`."""
        self._inbound_actions.add(action)

    async def run(self) -> None:
        """Handle media events and timers until cancelled. The composition root owns this task."""
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, tuple):
                    await self._on_timer(*item)
                else:
                    await self._on_media_event(item)
            except Exception:
                log.exception("failed to handle %r", item)

    async def shutdown(self) -> None:
        """End every live call (the process is stopping)."""
        for call_id in list(self._sessions):
            try:
                await self.hangup(
                    call_id,
                    source=HangupSource.PLATFORM,
                    code=ErrorCode.SERVICE_UNAVAILABLE,
                    description="the platform is shutting down",
                )
            except SwitchboardError:
                log.exception("could not end call %s at shutdown", call_id)

    # -- queries ------------------------------------------------------------------------------------

    async def get_call(self, call_id: str) -> Call:
        session = self._sessions.get(call_id)
        if session is not None:
            session.call.media = session.leg.diagnostics().as_dict()
            return session.call
        call = await self._calls.get(call_id)
        if call is None:
            raise CallNotFound(call_id)
        return call

    async def get_dialog(self, dialog_id: str) -> Dialog:
        dialog = await self._dialogs.get(dialog_id)
        if dialog is None:
            raise DialogNotFound(dialog_id)
        return dialog

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
        calls, total = await self._calls.list(
            active=active,
            calls_configuration_id=calls_configuration_id,
            state=state,
            direction=direction,
            page=page,
            size=size,
        )
        return [await self.get_call(c.id) if c.id in self._sessions else c for c in calls], total

    async def list_dialogs(
        self, *, active: bool | None = None, page: int = 0, size: int = 20
    ) -> tuple[list[Dialog], int]:
        dialogs, total = await self._dialogs.list(active=active, page=page, size=size)
        return list(dialogs), total

    def is_live(self, call_id: str) -> bool:
        return call_id in self._sessions

    # -- channel side: what peers do --------------------------------------------------------------

    async def receive_inbound(
        self,
        *,
        endpoint: Endpoint,
        to: str,
        sender_id: str,
        peer_call_id: str,
        remote_offer: str,
        custom_data: dict[str, str] | None = None,
    ) -> Call | None:
        """A call from a peer. Returns the call, or None if it was a repeat or was refused."""
        if peer_call_id in self._by_peer or await self._calls.find_by_peer_call_id(peer_call_id):
            log.info("repeated inbound call %s ignored", peer_call_id)
            return None
        sender = await self._senders.get(sender_id)
        inbound = sender.inbound if sender else None
        call = Call(
            id=self._ids(),
            endpoint=endpoint,
            direction=Direction.INBOUND,
            from_=endpoint.address,
            to=to,
            sender_id=sender_id,
            peer_call_id=peer_call_id,
            custom_data=dict(custom_data or {}),
            start_time=self._now(),
        )
        refusal = self._inbound_refusal(inbound)
        if refusal is not None or inbound is None:
            await self._refuse(call, refusal or "no inbound configuration")
            return None
        call.calls_configuration_id = inbound.calls_configuration_id
        call.application_id = inbound.action.value
        leg = await self._media.create_leg(call.id, self._queue.put_nowait, WHATSAPP_LEG)
        channel = self._channels.get(endpoint.type)
        if channel is not None and not channel.early_media:
            leg.set_sending(False)
        session = _Session(call=call, leg=leg, remote_sdp=remote_offer)
        self._sessions[call.id] = session
        self._by_peer[peer_call_id] = call.id
        await self._calls.save(call)
        await self._publish(ev.CallReceived, call)
        await self._replay_early(call)
        return call

    def _inbound_refusal(self, inbound: InboundConfiguration | None) -> str | None:
        if inbound is None:
            return "the sender is not configured"
        if inbound.action not in self._inbound_actions:
            return f"inbound action {inbound.action} is not available on this server"
        if inbound.action is InboundAction.SUBSCRIPTION and not inbound.calls_configuration_id:
            return "the sender's inbound action SUBSCRIPTION names no calls configuration"
        return None

    async def _refuse(self, call: Call, reason: str) -> None:
        log.warning("refusing inbound call %s from %s: %s", call.peer_call_id, call.from_, reason)
        st.end(
            call,
            CallState.FAILED,
            self._now(),
            source=HangupSource.PLATFORM,
            code=ErrorCode.SERVICE_UNAVAILABLE,
            description=reason,
        )
        await self._calls.save(call)
        channel = self._channels.get(call.endpoint.type)
        if channel is not None:
            try:
                await channel.reject(call)
            except ChannelError:
                log.exception("could not reject call %s", call.peer_call_id)

    async def remote_ringing(self, peer_call_id: str) -> None:
        call = self._call_by_peer(peer_call_id)
        if call is None:
            self._stash(peer_call_id, "ringing")
            return
        if call.state is CallState.CALLING:
            st.transition(call, CallState.RINGING, self._now(), "ring")
            await self._calls.save(call)
            await self._publish(ev.CallRinging, call)

    async def remote_answered(self, peer_call_id: str, sdp_answer: str) -> None:
        """The far end answered a call we placed, with its SDP answer."""
        call = self._call_by_peer(peer_call_id)
        if call is None:
            self._stash(peer_call_id, "answered", sdp_answer)
            return
        session = self._sessions[call.id]
        async with session.lock:
            if call.state not in st.ANSWERABLE:
                return
            try:
                await session.leg.accept_answer(sdp_answer)
            except MediaError as exc:
                await self._end(
                    session,
                    ErrorCode.INVALID_REQUEST,
                    f"bad SDP answer: {exc}",
                    HangupSource.PLATFORM,
                    tell_peer=True,
                )
                return
            self._cancel_timer(session.connect_timer)
            st.transition(call, CallState.ESTABLISHED, self._now(), "answer")
            self._arm_max_duration(session)
            await self._calls.save(call)
            await self._record_permission_use(call, connected=True)
            await self._publish(ev.CallEstablished, call)
        record = session.record_on_answer
        if record is not None:
            await self.start_recording(call.id, fmt=record.fmt, custom_data=record.custom_data)
        await self._dialog_leg_established(session)

    async def remote_hangup(
        self, peer_call_id: str, *, code: ErrorCode = ErrorCode.NORMAL_HANGUP, description: str = ""
    ) -> None:
        call = self._call_by_peer(peer_call_id)
        if call is None:
            self._stash(peer_call_id, "hangup", code, description)
            return
        session = self._sessions.get(call.id)
        if session is None:
            return
        async with session.lock:
            await self._end(
                session,
                code,
                description or "the user hung up",
                HangupSource.ENDPOINT,
                tell_peer=False,
            )

    def _call_by_peer(self, peer_call_id: str) -> Call | None:
        call_id = self._by_peer.get(peer_call_id)
        session = self._sessions.get(call_id) if call_id else None
        return session.call if session else None

    def _stash(self, peer_call_id: str, kind: str, *args: object) -> None:
        """Keep a signal that came before the call it belongs to (webhooks are unordered)."""
        now = time.monotonic()
        for key in [k for k, v in self._early.items() if v and v[0][0] < now - 120]:
            del self._early[key]
        self._early.setdefault(peer_call_id, []).append((now, kind, args))

    async def _replay_early(self, call: Call) -> None:
        for _, kind, args in self._early.pop(call.peer_call_id or "", []):
            ext = call.peer_call_id or ""
            if kind == "ringing":
                await self.remote_ringing(ext)
            elif kind == "answered":
                await self.remote_answered(ext, str(args[0]))
            elif kind == "hangup":
                code = args[0] if isinstance(args[0], ErrorCode) else ErrorCode.NORMAL_HANGUP
                await self.remote_hangup(ext, code=code, description=str(args[1]))

    def was_ended_early(self, peer_call_id: str) -> bool:
        """Whether a hang-up for this call arrived before the call itself."""
        return any(kind == "hangup" for _, kind, _ in self._early.get(peer_call_id, []))

    # -- application side: actions ----------------------------------------------------------------

    def _session(self, call_id: str) -> _Session:
        session = self._sessions.get(call_id)
        if session is None:
            raise CallNotFound(call_id)
        return session

    async def _live(self, call_id: str) -> _Session:
        session = self._sessions.get(call_id)
        if session is not None:
            return session
        call = await self._calls.get(call_id)
        if call is None:
            raise CallNotFound(call_id)
        raise InvalidCallState(call_id, call.state.value, "act on")

    def _channel(self, call: Call) -> CallChannel:
        channel = self._channels.get(call.endpoint.type)
        if channel is None:
            raise UnsupportedEndpoint(call.endpoint.type.value)
        return channel

    async def _local_answer(self, session: _Session) -> str:
        if session.local_sdp is None:
            if session.remote_sdp is None:
                raise InvalidCallState(session.call.id, session.call.state.value, "answer")
            session.local_sdp = await session.leg.answer(session.remote_sdp)
        return session.local_sdp

    async def send_ringing(self, call_id: str) -> Call:
        session = await self._live(call_id)
        async with session.lock:
            st.require(session.call, frozenset({CallState.CALLING, CallState.RINGING}), "ring")
            if session.call.state is CallState.CALLING:
                st.transition(session.call, CallState.RINGING, self._now(), "ring")
                await self._calls.save(session.call)
                await self._publish(ev.CallRinging, session.call)
            return session.call

    async def pre_answer(self, call_id: str) -> Call:
        session = await self._live(call_id)
        async with session.lock:
            call = session.call
            st.require(call, frozenset({CallState.CALLING, CallState.RINGING}), "pre-answer")
            await self._pre_accept(session)
            st.transition(call, CallState.PRE_ESTABLISHED, self._now(), "pre-answer")
            await self._calls.save(call)
            await self._publish(ev.CallPreEstablished, call)
            return call

    async def _pre_accept(self, session: _Session) -> None:
        if session.pre_answered:
            return
        sdp = await self._local_answer(session)
        await self._channel_op(session, "pre_answer", sdp)
        session.pre_answered = True

    async def answer(self, call_id: str) -> Call:
        session = await self._live(call_id)
        async with session.lock:
            await self._answer(session)
        await self._dialog_leg_established(session)
        return session.call

    async def _answer(self, session: _Session) -> None:
        call = session.call
        if call.direction is not Direction.INBOUND:
            raise InvalidCallState(call.id, call.state.value, "answer an outbound")
        st.require(call, st.ANSWERABLE, "answer")
        await self._pre_accept(session)
        await self._channel_op(session, "answer", await self._local_answer(session))
        session.leg.set_sending(True)
        st.transition(call, CallState.ESTABLISHED, self._now(), "answer")
        await self._calls.save(call)
        await self._publish(ev.CallEstablished, call)

    async def _channel_op(self, session: _Session, op: str, sdp: str | None = None) -> None:
        """Run a signalling action; a peer that fails it fails the call, and the caller hears why."""
        channel = self._channel(session.call)
        try:
            if op == "pre_answer":
                await channel.pre_answer(session.call, sdp or "")
            elif op == "answer":
                await channel.answer(session.call, sdp or "")
        except ChannelError as exc:
            await self._end(
                session,
                ErrorCode.SERVICE_UNAVAILABLE,
                str(exc),
                HangupSource.PLATFORM,
                tell_peer=True,
            )
            raise

    async def hangup(
        self,
        call_id: str,
        *,
        source: HangupSource = HangupSource.API,
        code: ErrorCode = ErrorCode.NORMAL_HANGUP,
        description: str = "hung up through the API",
    ) -> Call:
        session = await self._live(call_id)
        async with session.lock:
            await self._end(session, code, description, source, tell_peer=True)
            return session.call

    async def _end(
        self,
        session: _Session,
        code: ErrorCode,
        description: str,
        source: HangupSource,
        *,
        tell_peer: bool,
    ) -> None:
        call = session.call
        if self._sessions.pop(call.id, None) is None:
            return
        answered = call.answer_time is not None
        if tell_peer:
            await self._tell_peer_end(call)
        for timer in (
            session.capture_timer,
            session.connect_timer,
            session.media_closed_timer,
            session.max_duration_timer,
        ):
            self._cancel_timer(timer)
        await self._finish_operations(session)
        call.media = session.leg.diagnostics().as_dict()
        try:
            await session.leg.close()
        except Exception:
            log.exception("closing media of call %s failed", call.id)
        final = st.final_state_for(call, code)
        st.end(call, final, self._now(), source=source, code=code, description=description)
        if call.peer_call_id:
            self._by_peer.pop(call.peer_call_id, None)
        await self._calls.save(call)
        if call.direction is Direction.OUTBOUND and not answered:
            await self._record_permission_use(call, connected=False)
        event = ev.CallFinished if final is CallState.FINISHED else ev.CallFailed
        await self._publish(event, call)
        await self._dialog_leg_ended(session)

    async def _tell_peer_end(self, call: Call) -> None:
        channel = self._channels.get(call.endpoint.type)
        if channel is None:
            return
        try:
            if call.direction is Direction.INBOUND and call.state in (
                CallState.CALLING,
                CallState.RINGING,
            ):
                await channel.reject(call)
            else:
                await channel.hangup(call)
        except ChannelError:
            log.exception("could not tell the peer that call %s ended", call.id)

    async def _finish_operations(self, session: _Session) -> None:
        if session.playback is not None:
            await self._playback_done(session, session.leg.id, duration_ms=0, completed=False)
        if session.capture is not None:
            await self._capture_done(session, CaptureResult(session.capture.digits, timeout=True))
        if session.recording is not None:
            try:
                await session.leg.stop_recording()
            except MediaError:
                log.exception("could not finish the recording of call %s", session.call.id)

    # -- media actions ------------------------------------------------------------------------------

    async def play(
        self,
        call_id: str,
        source: AudioSource,
        *,
        loop_count: int = 1,
        stop_on_terminator: str | None = None,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        session = await self._live(call_id)
        return await self._start_playback(
            session, source, loop_count, stop_on_terminator, custom_data, is_say=False
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
        session = await self._live(call_id)
        st.require(session.call, st.ACTIVE, "say")
        path = await self._tts.synthesize(
            text, language=language, speech_rate=speech_rate, voice_gender=voice_gender
        )
        return await self._start_playback(
            session, MediaLocator.for_path(path), loop_count, stop_on_terminator, custom_data, is_say=True
        )

    async def _start_playback(
        self,
        session: _Session,
        source: AudioSource,
        loop_count: int,
        stop_on: str | None,
        custom_data: dict[str, str] | None,
        *,
        is_say: bool,
    ) -> str:
        async with session.lock:
            st.require(session.call, st.ACTIVE, "say" if is_say else "play")
            if session.playback is not None:
                await self._playback_done(session, session.leg.id, duration_ms=0, completed=False)
            playback = _Playback(self._ids(), is_say, dict(custom_data or {}), stop_on)
            session.playback = playback
            await session.leg.play(source, loop_count=loop_count, playback_id=playback.id)
            return playback.id

    async def stop_play(self, call_id: str) -> Call:
        session = await self._live(call_id)
        async with session.lock:
            st.require(session.call, st.ACTIVE, "stop playing on")
            if session.playback is not None:
                await session.leg.stop_play()
            return session.call

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
        session = await self._live(call_id)
        async with session.lock:
            st.require(session.call, st.ACTIVE, "capture DTMF on")
            if session.capture is not None:
                raise InvalidCallState(call_id, "CAPTURING", "start a second DTMF capture on")
            capture = DtmfCapture(
                operation_id=self._ids(),
                started=time.monotonic(),
                max_length=max_length,
                timeout_ms=timeout_ms,
                terminator=terminator,
                digit_timeout_ms=digit_timeout_ms,
                custom_data=dict(custom_data or {}),
            )
            session.capture = capture
            session.leg.enable_inband_dtmf(True)
            self._arm_capture_timer(session)
            return capture.operation_id

    def _arm_capture_timer(self, session: _Session) -> None:
        self._cancel_timer(session.capture_timer)
        if session.capture is None:
            return
        delay = max(0.0, session.capture.next_deadline() - time.monotonic())
        loop = asyncio.get_running_loop()
        session.capture_timer = loop.call_later(delay, self._queue.put_nowait, (session.call.id, "capture"))

    async def send_dtmf(self, call_id: str, digits: str) -> Call:
        session = await self._live(call_id)
        st.require(session.call, st.ACTIVE, "send DTMF on")
        await session.leg.send_dtmf(digits)
        return session.call

    async def start_recording(
        self,
        call_id: str,
        *,
        fmt: RecordingFormat = RecordingFormat.WAV,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        session = await self._live(call_id)
        async with session.lock:
            st.require(session.call, st.ACTIVE, "record")
            if session.recording is not None:
                raise InvalidCallState(call_id, "RECORDING", "start a second recording on")
            recording_id = self._ids()
            suffix = "wav" if fmt is RecordingFormat.WAV else "ogg"
            self._recordings_dir.mkdir(parents=True, exist_ok=True)
            path = self._recordings_dir / f"{call_id}-{recording_id}.{suffix}"
            await session.leg.start_recording(MediaLocator.for_path(path), fmt=fmt, recording_id=recording_id)
            session.recording = recording_id
            self._recordings[recording_id] = dict(custom_data or {})
            return recording_id

    async def stop_recording(self, call_id: str) -> Call:
        session = await self._live(call_id)
        async with session.lock:
            if session.recording is None:
                raise InvalidCallState(call_id, "NOT_RECORDING", "stop recording on")
            await session.leg.stop_recording()
            return session.call

    # -- outbound calls ------------------------------------------------------------------------------

    async def create_call(self, request: CallRequest) -> Call:
        """Place a call; policy (PSTN ban, WhatsApp call permission) is checked before dialling."""
        policy.check_not_pstn(request.endpoint)
        channel = self._channels.get(request.endpoint.type)
        if channel is None:
            raise UnsupportedEndpoint(request.endpoint.type.value)
        call = Call(
            id=self._ids(),
            endpoint=request.endpoint,
            direction=Direction.OUTBOUND,
            from_=request.from_,
            to=request.endpoint.address,
            calls_configuration_id=request.calls_configuration_id,
            application_id=request.application_id,
            custom_data=dict(request.custom_data),
            parent_call_id=request.parent_call_id,
            external_id=request.external_id,
            start_time=self._now(),
        )
        if request.endpoint.type is EndpointType.WHATSAPP:
            await self._check_whatsapp_outbound(call)
        leg = await self._media.create_leg(call.id, self._queue.put_nowait, WHATSAPP_LEG)
        session = _Session(
            call=call,
            leg=leg,
            max_duration_s=request.max_duration_s,
            record_on_answer=request.record,
        )
        self._sessions[call.id] = session
        try:
            offer = await leg.offer()
            await self._calls.save(call)
            await self._publish(ev.CallStarted, call)
            result = await channel.dial(call, offer)
        except SwitchboardError as exc:
            async with session.lock:
                await self._end(session, _failure_code(exc), str(exc), HangupSource.PLATFORM, tell_peer=False)
            raise
        call.peer_call_id = result.peer_call_id
        self._by_peer[result.peer_call_id] = call.id
        await self._calls.save(call)
        loop = asyncio.get_running_loop()
        session.connect_timer = loop.call_later(
            request.connect_timeout_s, self._queue.put_nowait, (call.id, "connect")
        )
        await self._replay_early(call)
        return call

    async def _check_whatsapp_outbound(self, call: Call) -> None:
        sender = await self._senders.get(call.from_) or await self._senders.by_display_number(call.from_)
        if sender is None:
            raise SwitchboardError(f"from {call.from_!r} is not a WhatsApp sender of this server")
        call.sender_id = sender.phone_number_id
        call.from_ = sender.display_phone_number
        record = await self._permissions.get(sender.phone_number_id, call.to)
        policy.check_call_permission(record, sender.phone_number_id, call.to, self._now())

    async def _record_permission_use(self, call: Call, *, connected: bool) -> None:
        if call.endpoint.type is not EndpointType.WHATSAPP or call.direction is Direction.INBOUND:
            return
        if call.sender_id is None:
            return
        record = await self._permissions.get(call.sender_id, call.to) or PermissionRecord(
            call.sender_id, call.to
        )
        policy.record_call_outcome(record, connected=connected, now=self._now())
        await self._permissions.save(record)

    # -- dialogs -------------------------------------------------------------------------------------

    async def connect(self, parent_call_id: str, child: CallRequest | str) -> Dialog:
        """Bridge `parent_call_id` with a new call (`CallRequest`) or an existing call (its id)."""
        parent = await self._live(parent_call_id)
        if parent.dialog_id is not None:
            raise InvalidCallState(parent_call_id, "IN_DIALOG", "start a second dialog on")
        if isinstance(child, str):
            child_session = await self._live(child)
            policy.check_not_pstn(parent.call.endpoint, child_session.call.endpoint)
            child_call = child_session.call
        else:
            policy.check_not_pstn(parent.call.endpoint, child.endpoint)
            child_call = await self.create_call(child)
            child_session = self._session(child_call.id)
        dialog = Dialog(
            id=self._ids(),
            parent_call_id=parent.call.id,
            child_call_id=child_call.id,
            calls_configuration_id=parent.call.calls_configuration_id,
            start_time=self._now(),
        )
        parent.dialog_id = child_session.dialog_id = dialog.id
        parent.call.dialog_id = child_call.dialog_id = dialog.id
        await self._dialogs.save(dialog)
        await self._publish_dialog(ev.DialogCreated, dialog)
        if child_call.state is CallState.ESTABLISHED:
            await self._dialog_leg_established(child_session)
        return dialog

    async def _dialog_leg_established(self, session: _Session) -> None:
        if session.dialog_id is None:
            return
        dialog = await self._dialogs.get(session.dialog_id)
        if dialog is None or dialog.state is not DialogState.CREATED:
            return
        parent = self._sessions.get(dialog.parent_call_id)
        child = self._sessions.get(dialog.child_call_id)
        if parent is None or child is None or child.call.state is not CallState.ESTABLISHED:
            return
        if parent.call.state is not CallState.ESTABLISHED:
            async with parent.lock:
                await self._answer(parent)
        await self._media.bridge(parent.leg, child.leg)
        dialog.state = DialogState.ESTABLISHED
        dialog.establish_time = self._now()
        await self._dialogs.save(dialog)
        await self._publish_dialog(ev.DialogEstablished, dialog)

    async def _dialog_leg_ended(self, session: _Session) -> None:
        if session.dialog_id is None:
            return
        dialog = await self._dialogs.get(session.dialog_id)
        if dialog is None or dialog.state in (DialogState.FINISHED, DialogState.FAILED):
            return
        established = dialog.state is DialogState.ESTABLISHED
        dialog.state = DialogState.FINISHED if established else DialogState.FAILED
        dialog.end_time = self._now()
        dialog.error = session.call.error
        await self._dialogs.save(dialog)
        other_id = dialog.child_call_id if session.call.id == dialog.parent_call_id else dialog.parent_call_id
        other = self._sessions.get(other_id)
        if other is not None:
            async with other.lock:
                await self._end(
                    other,
                    ErrorCode.NORMAL_HANGUP,
                    "the other side of the dialog ended",
                    HangupSource.PLATFORM,
                    tell_peer=True,
                )
        event = ev.DialogFinished if established else ev.DialogFailed
        await self._publish_dialog(event, dialog)

    async def hangup_dialog(self, dialog_id: str) -> Dialog:
        dialog = await self.get_dialog(dialog_id)
        for call_id in (dialog.child_call_id, dialog.parent_call_id):
            if call_id in self._sessions:
                await self.hangup(call_id)
        return await self.get_dialog(dialog_id)

    # -- media events and timers --------------------------------------------------------------------

    async def _on_media_event(self, event: MediaEvent) -> None:
        if isinstance(event, RecordingFinished):
            await self._recording_done(event)
            return
        session = self._sessions.get(event.leg_id)
        if session is None:
            return
        match event:
            case MediaStarted():
                log.info("media of call %s started", event.leg_id)
            case MediaClosed():
                loop = asyncio.get_running_loop()
                session.media_closed_timer = loop.call_later(
                    MEDIA_CLOSED_GRACE_S, self._queue.put_nowait, (session.call.id, "media_closed")
                )
            case MediaFailed(reason=reason):
                async with session.lock:
                    await self._end(
                        session,
                        ErrorCode.MEDIA_FAILURE,
                        reason,
                        HangupSource.PLATFORM,
                        tell_peer=True,
                    )
            case DtmfReceived(digit=digit, duration_ms=duration):
                await self._on_dtmf(session, digit, duration)
            case PlaybackFinished(playback_id=pid, duration_ms=duration, completed=completed):
                if session.playback is not None and session.playback.id == pid:
                    await self._playback_done(session, pid, duration, completed)

    async def _on_dtmf(self, session: _Session, digit: str, duration_ms: int) -> None:
        await self._publish(ev.DtmfReceived, session.call, digit=digit, duration_ms=duration_ms)
        playback = session.playback
        if playback is not None and playback.stop_on is not None:
            playback.captured += digit
            if digit in playback.stop_on:
                await session.leg.stop_play()
        if session.capture is not None:
            result = session.capture.receive(digit, time.monotonic())
            if result is None:
                self._arm_capture_timer(session)
            else:
                await self._capture_done(session, result)

    async def _capture_done(self, session: _Session, result: CaptureResult) -> None:
        capture, session.capture = session.capture, None
        self._cancel_timer(session.capture_timer)
        session.leg.enable_inband_dtmf(False)
        assert capture is not None
        await self._publish(
            ev.DtmfCaptured,
            session.call,
            dtmf=result.dtmf,
            timeout=result.timeout,
            custom_data=capture.custom_data,
        )

    async def _playback_done(
        self, session: _Session, playback_id: str, duration_ms: int, completed: bool
    ) -> None:
        playback, session.playback = session.playback, None
        if playback is None:
            return
        event_type = ev.SayFinished if playback.is_say else ev.PlayFinished
        await self._publish(
            event_type,
            session.call,
            operation_id=playback.id,
            duration_ms=duration_ms,
            completed=completed,
            captured_dtmf=playback.captured or None,
            custom_data=playback.custom_data,
        )

    async def _recording_done(self, event: RecordingFinished) -> None:
        """A recording's file is complete; it may finish after its call ended (a hang-up stops it)."""
        custom = self._recordings.pop(event.recording_id, {})
        session = self._sessions.get(event.leg_id)
        if session is not None:
            session.recording = None
        call = session.call if session is not None else await self._calls.get(event.leg_id)
        if call is None:
            return
        await self._publish(
            ev.RecordingReady,
            call,
            recording_id=event.recording_id,
            path=event.locator.path,
            duration_ms=event.duration_ms,
            size=event.size,
            custom_data=custom,
        )

    async def _on_timer(self, call_id: str, what: str) -> None:
        session = self._sessions.get(call_id)
        if session is None:
            return
        if what == "capture" and session.capture is not None:
            result = session.capture.timeout(time.monotonic())
            if result is None:
                self._arm_capture_timer(session)
            else:
                await self._capture_done(session, result)
        elif what == "max_duration":
            async with session.lock:
                await self._end(
                    session,
                    ErrorCode.NORMAL_HANGUP,
                    f"the call reached its maximum duration of {session.max_duration_s} s",
                    HangupSource.PLATFORM,
                    tell_peer=True,
                )
        elif what == "media_closed":
            async with session.lock:
                await self._end(
                    session,
                    ErrorCode.NORMAL_HANGUP,
                    "the peer ended the media session",
                    HangupSource.ENDPOINT,
                    tell_peer=True,
                )
        elif what == "connect" and session.call.state in st.ANSWERABLE:
            async with session.lock:
                await self._end(
                    session,
                    ErrorCode.NO_ANSWER,
                    "the callee did not answer in time",
                    HangupSource.PLATFORM,
                    tell_peer=True,
                )

    def _arm_max_duration(self, session: _Session) -> None:
        if session.max_duration_s is not None:
            session.max_duration_timer = asyncio.get_running_loop().call_later(
                session.max_duration_s, self._queue.put_nowait, (session.call.id, "max_duration")
            )

    @staticmethod
    def _cancel_timer(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    # -- events ---------------------------------------------------------------------------------------

    async def _publish(self, event_type: type[ev.CallEvent], call: Call, **fields: object) -> None:
        snapshot = _snapshot(call)
        await self._bus.publish(event_type(call=snapshot, timestamp=self._now(), **fields))

    async def _publish_dialog(self, event_type: type[ev.DialogEvent], dialog: Dialog) -> None:
        session = self._sessions.get(dialog.parent_call_id)
        call = session.call if session else await self._calls.get(dialog.parent_call_id)
        if call is None:
            return
        await self._bus.publish(
            event_type(call=_snapshot(call), timestamp=self._now(), dialog=_copy_dialog(dialog))
        )


def _snapshot(call: Call) -> Call:
    snap = copy(call)
    snap.custom_data = dict(call.custom_data)
    snap.media = dict(call.media)
    return snap


def _copy_dialog(dialog: Dialog) -> Dialog:
    return copy(dialog)


def _failure_code(exc: SwitchboardError) -> ErrorCode:
    """The error code a call placement that raised `exc` ends with (a peer's 403 is FORBIDDEN too)."""
    if exc.status_hint == 403:
        return ErrorCode.FORBIDDEN
    if isinstance(exc, ChannelError):
        return ErrorCode.SERVICE_UNAVAILABLE
    return ErrorCode.INVALID_REQUEST
