"""Media operations on a live call: play and say, DTMF capture and sending, recording.

Each operation is typed state on the call's session; its end becomes one event (`PlayFinished`,
`SayFinished`, `DtmfCaptured`, `RecordingReady`). A DTMF capture is a pure `DtmfCapture` whose deadline
is the call's `TimerKind.CAPTURE`.
"""

from __future__ import annotations

import logging

from switchboard.core import events as ev
from switchboard.core import state as st
from switchboard.core.content import Content, FileContent, RecordingContent, SpeechContent, UrlContent
from switchboard.core.dtmf_capture import CaptureResult, DtmfCapture
from switchboard.core.errors import InvalidCallState, MediaError
from switchboard.core.services import Services
from switchboard.core.session import CallSession, Capture, Playback, Recording, Stop
from switchboard.core.timers import TimerKind
from switchboard.media.engine import (
    DtmfReceived,
    PlaybackFinished,
    RecordingFinished,
    RecordingFormat,
    UnplayableAudio,
    check_dtmf,
)

log = logging.getLogger(__name__)


class Operations:
    def __init__(self, services: Services) -> None:
        self._s = services

    # -- play and say ----------------------------------------------------------------------------------

    async def play(
        self,
        call_id: str,
        content: Content,
        *,
        loop_count: int = 1,
        stop_on_terminator: str | None = None,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        """Play `content`; `PlayFinished` (`SayFinished` for speech) reports the end. Returns its id."""
        s = self._s
        session = await s.live(call_id)
        is_say = isinstance(content, SpeechContent)
        action = "say" if is_say else "play"
        st.require(session.call, st.ACTIVE, action)
        source = await s.content.resolve(content)
        async with s.change(session):
            st.require(session.call, st.ACTIVE, action)
            self._end_playback(session, duration_ms=0, completed=False)
            playback = Playback(s.ids(), is_say, dict(custom_data or {}), stop_on_terminator)
            try:
                await session.leg.play(source, loop_count=loop_count, playback_id=playback.id)
            except UnplayableAudio as exc:
                raise UnplayableAudio(f"{_field(content)}: {exc}") from exc
            session.playback = playback
            return playback.id

    async def stop_play(self, call_id: str) -> None:
        session = await self._s.live(call_id)
        async with self._s.change(session):
            st.require(session.call, st.ACTIVE, "stop playing on")
            if session.playback is not None:
                await session.leg.stop_play()

    def _end_playback(self, session: CallSession, *, duration_ms: int, completed: bool) -> None:
        playback, session.playback = session.playback, None
        if playback is None:
            return
        self._s.emit(
            session.call,
            ev.SayFinished if playback.is_say else ev.PlayFinished,
            operation_id=playback.id,
            duration_ms=duration_ms,
            completed=completed,
            captured_dtmf=playback.captured or None,
            custom_data=playback.custom_data,
        )

    # -- DTMF ----------------------------------------------------------------------------------------------

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
        """Collect keys until `max_length`, the terminator or a timeout; `DtmfCaptured` reports them."""
        s = self._s
        session = await s.live(call_id)
        async with s.change(session):
            st.require(session.call, st.ACTIVE, "capture DTMF on")
            if session.capture is not None:
                raise InvalidCallState(call_id, "CAPTURING", "start a second DTMF capture on")
            machine = DtmfCapture(
                operation_id=s.ids(),
                started=s.clock.monotonic(),
                max_length=max_length,
                timeout_ms=timeout_ms,
                terminator=terminator,
                digit_timeout_ms=digit_timeout_ms,
                custom_data=dict(custom_data or {}),
            )
            deadline = machine.next_deadline()
            session.capture = Capture(machine)
            session.leg.enable_inband_dtmf(True)
            session.deadlines.set(TimerKind.CAPTURE, deadline)
            return machine.operation_id

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        check_dtmf(digits)
        session = await self._s.live(call_id)
        st.require(session.call, st.ACTIVE, "send DTMF on")
        await session.leg.send_dtmf(digits)

    async def on_dtmf(self, session: CallSession, event: DtmfReceived) -> None:
        """A key from the peer: reported, stops a playback that listens for it, feeds a capture."""
        s = self._s
        s.emit(session.call, ev.DtmfReceived, digit=event.digit, duration_ms=event.duration_ms)
        playback = session.playback
        if playback is not None and playback.stop_on is not None:
            playback.captured += event.digit
            if event.digit in playback.stop_on:
                playback.stop_on = None  # keys after the terminator are not this playback's
                await session.leg.stop_play()
        capture = session.capture
        if capture is not None:
            result = capture.machine.receive(event.digit, s.clock.monotonic())
            if result is None:
                session.deadlines.set(TimerKind.CAPTURE, capture.machine.next_deadline())
            else:
                self._end_capture(session, result)

    def on_capture_timer(self, session: CallSession) -> None:
        capture = session.capture
        if capture is None:
            return
        result = capture.machine.timeout(self._s.clock.monotonic())
        if result is None:
            session.deadlines.set(TimerKind.CAPTURE, capture.machine.next_deadline())
        else:
            self._end_capture(session, result)

    def _end_capture(self, session: CallSession, result: CaptureResult) -> None:
        capture, session.capture = session.capture, None
        session.deadlines.cancel(TimerKind.CAPTURE)
        if capture is None:
            return
        session.leg.enable_inband_dtmf(False)
        self._s.emit(
            session.call,
            ev.DtmfCaptured,
            dtmf=result.dtmf,
            timeout=result.timeout,
            custom_data=capture.machine.custom_data,
        )

    # -- recording -------------------------------------------------------------------------------------

    async def start_recording(
        self,
        call_id: str,
        *,
        fmt: RecordingFormat = RecordingFormat.WAV,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        session = await self._s.live(call_id)
        async with self._s.change(session):
            return await self.start_recording_locked(session, fmt, custom_data)

    async def start_recording_locked(
        self, session: CallSession, fmt: RecordingFormat, custom_data: dict[str, str] | None
    ) -> str:
        s = self._s
        st.require(session.call, st.ACTIVE, "record")
        if session.recording is not None:
            raise InvalidCallState(session.id, "RECORDING", "start a second recording on")
        recording = Recording(s.ids(), dict(custom_data or {}))
        target = s.recording_targets(session.id, recording.id, fmt)
        await session.leg.start_recording(target, fmt=fmt, recording_id=recording.id)
        session.recording = recording
        return recording.id

    async def stop_recording(self, call_id: str) -> None:
        session = await self._s.live(call_id)
        async with self._s.change(session):
            if session.recording is None:
                raise InvalidCallState(call_id, "NOT_RECORDING", "stop recording on")
            await session.leg.stop_recording()

    def on_recording_finished(self, session: CallSession, event: RecordingFinished) -> None:
        """A recording's file is complete; it may finish as its call ends (a hang-up stops it)."""
        recording = session.recording
        if recording is None or recording.id != event.recording_id:
            log.warning("call %s: unknown recording %s finished", session.id, event.recording_id)
            custom: dict[str, str] = {}
        else:
            session.recording = None
            custom = recording.custom_data
        self._s.emit(
            session.call,
            ev.RecordingReady,
            recording_id=event.recording_id,
            path=event.locator.path,
            duration_ms=event.duration_ms,
            size=event.size,
            custom_data=custom,
        )
        if session.ended and session.recording is None:
            session.inbox.put_nowait(Stop())

    def on_playback_finished(self, session: CallSession, event: PlaybackFinished) -> None:
        if session.playback is not None and session.playback.id == event.playback_id:
            self._end_playback(session, duration_ms=event.duration_ms, completed=event.completed)

    # -- a call that ends ----------------------------------------------------------------------------------

    async def finish_all(self, session: CallSession) -> None:
        """The call is ending: report unfinished operations and stop the recording (its file is then
        reported by `RecordingFinished`, which the call's executor waits for)."""
        self._end_playback(session, duration_ms=0, completed=False)
        if session.capture is not None:
            self._end_capture(session, CaptureResult(session.capture.machine.digits, timeout=True))
        if session.recording is not None:
            try:
                await session.leg.stop_recording()
            except MediaError:
                log.exception("could not finish the recording of call %s", session.id)
                session.recording = None


def _field(content: Content) -> str:
    """The request field that named `content`, for an error about it."""
    match content:
        case FileContent() | RecordingContent():
            return "content.fileId"
        case UrlContent():
            return "content.fileUrl"
        case SpeechContent():
            return "text"
        case _:
            return "content"
