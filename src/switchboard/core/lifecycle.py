"""A call's life: arriving, ringing, answering (both ways), and ending.

Channels report what their peers do (`receive_inbound`, `remote_ringing`, `remote_answered`,
`remote_hangup`); applications ring, pre-answer, answer and hang up. Every change goes through
`Services.change`, so events go out after the lock is released.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from switchboard.core import events as ev
from switchboard.core import state as st
from switchboard.core.errors import ChannelError, InvalidCallState, MediaError
from switchboard.core.far_end import FarEndHangups
from switchboard.core.models import (
    Call,
    CallError,
    CallState,
    Direction,
    Endpoint,
    ErrorCode,
    HangupDelivery,
    HangupSource,
    InboundAction,
    InboundTarget,
)
from switchboard.core.operations import Operations
from switchboard.core.ports import CallChannel, RingsBack
from switchboard.core.registry import EarlySignal, RemoteAnswered, RemoteHangup, RemoteRinging
from switchboard.core.services import Services
from switchboard.core.session import CallSession, RecordingRequest, Stop
from switchboard.core.timers import TimerKind

log = logging.getLogger(__name__)

MEDIA_CLOSED_GRACE_S = 5.0
STORE_END_RETRY_S = 1.0
"""How soon an ended call whose final state could not be stored is stored again."""
"""After a peer closes its media cleanly, how long to wait for its signalling to end the call."""

SessionHook = Callable[[CallSession], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class InboundCall:
    """A call from a peer, as a channel reports it."""

    endpoint: Endpoint
    to: str
    peer_call_id: str
    remote_offer: str
    target: InboundTarget | None
    """The application the called number is handed to (resolved by the channel)."""
    sender_id: str | None = None
    custom_data: dict[str, str] = field(default_factory=dict)
    sip_headers: dict[str, str] = field(default_factory=dict)
    """A SIP call's `X-` headers (read by routing criteria)."""


class ChannelOp(enum.Enum):
    PRE_ANSWER = "pre_answer"
    ANSWER = "answer"


def assign_target(call: Call, target: InboundTarget) -> None:
    """Hand `call` to `target`'s application (kept in the call's chain of targets)."""
    call.targets.append(target)
    call.application_id = target.action.value
    call.calls_configuration_id = target.id if target.action is InboundAction.SUBSCRIPTION else None


class Lifecycle:
    def __init__(self, services: Services, operations: Operations, far_end: FarEndHangups) -> None:
        self._s = services
        self._ops = operations
        self._far_end = far_end
        self.on_established: list[SessionHook] = []
        """Run (lock released) after a call is answered: dialogs bridge here."""
        self.on_ended: list[SessionHook] = []
        """Run (lock released) after a call ended: dialogs end their other side here."""
        self.on_ending: list[Callable[[CallSession], None]] = []
        """Run (lock held) while a call ends, before its final event: pending transfers fail here."""

    # -- inbound ---------------------------------------------------------------------------------------

    async def receive_inbound(self, inbound: InboundCall) -> Call | None:
        """A call from a peer. Returns the call, or None if it was a repeat or was refused."""
        s = self._s
        peer = inbound.peer_call_id
        known = s.registry.by_peer(peer)
        if known is not None:
            # A repeat; if storing its first events failed, they are given to the store again now.
            await s.publisher.flush(known.id)
            log.info("repeated inbound call %s ignored", peer)
            return None
        if await s.calls.find_by_peer_call_id(peer):
            log.info("repeated inbound call %s ignored", peer)
            return None
        call = Call(
            id=s.ids(),
            endpoint=inbound.endpoint,
            direction=Direction.INBOUND,
            from_=inbound.endpoint.address,
            to=inbound.to,
            sender_id=inbound.sender_id,
            peer_call_id=peer,
            custom_data=dict(inbound.custom_data),
            sip_headers=dict(inbound.sip_headers),
            start_time=s.clock.now(),
        )
        channel = s.channels.get(inbound.endpoint.type)
        refusal = await s.admission.refusal(inbound.target)
        if channel is None or inbound.target is None or refusal is not None:
            await self._refuse(call, refusal or f"no channel for {inbound.endpoint.type} calls")
            return None
        assign_target(call, inbound.target)
        session = await s.open_session(call, channel)
        session.remote_sdp = inbound.remote_offer
        if not channel.early_media:
            session.leg.set_sending(False)
        async with s.change(session):
            await s.calls.save(call)
            s.emit(call, ev.CallReceived)
        await self.replay_early(session)
        return call

    async def _refuse(self, call: Call, reason: str) -> None:
        log.warning("refusing inbound call %s from %s: %s", call.peer_call_id, call.from_, reason)
        st.end(
            call,
            CallState.FAILED,
            self._s.clock.now(),
            source=HangupSource.PLATFORM,
            code=ErrorCode.SERVICE_UNAVAILABLE,
            description=reason,
        )
        await self._s.calls.save(call)
        channel = self._s.channels.get(call.endpoint.type)
        if channel is not None:
            try:
                await channel.reject(call)
            except ChannelError:
                log.exception("could not reject call %s", call.peer_call_id)

    # -- what the far end does -------------------------------------------------------------------------

    def _stash(self, peer_call_id: str, signal: EarlySignal) -> None:
        self._s.registry.stash(peer_call_id, signal, self._s.clock.monotonic())

    async def replay_early(self, session: CallSession) -> None:
        for signal in self._s.registry.take_early(session.call.peer_call_id or ""):
            await self._signal(session, signal)

    async def _signal(self, session: CallSession, signal: EarlySignal) -> None:
        match signal:
            case RemoteRinging():
                await self._ringing(session)
            case RemoteAnswered(sdp_answer=sdp):
                await self._answered(session, sdp)
            case RemoteHangup(code=code, description=description):
                await self._hung_up(session, code, description)

    def was_ended_early(self, peer_call_id: str) -> bool:
        """Whether a hang-up for this call arrived before the call itself."""
        return self._s.registry.ended_early(peer_call_id)

    async def remote_signal(
        self, peer_call_id: str, signal: EarlySignal, *, call_hint: str | None = None
    ) -> None:
        """What the far end of `peer_call_id` did; kept for later if the call is not known yet.

        `call_hint` is our id for the call when the channel's signal carries it (WhatsApp's
        `biz_opaque_callback_data`): it binds a call whose dial outcome was unknown, and a far-end call
        whose own call already ended is hung up rather than left ringing."""
        registry = self._s.registry
        session = registry.by_peer(peer_call_id)
        if session is None and call_hint is not None:
            session = await self._bind_hinted(peer_call_id, call_hint, signal)
        if session is None:
            self._stash(peer_call_id, signal)
            return
        await self._signal(session, signal)

    async def _bind_hinted(self, peer_call_id: str, call_id: str, signal: EarlySignal) -> CallSession | None:
        s = self._s
        session = s.registry.get(call_id)
        if session is not None and session.call.peer_call_id is None:
            async with s.change(session):
                s.registry.bind_peer(session, peer_call_id)
                await s.calls.save(session.call)
            log.info("call %s bound to its far-end call %s by its signal", call_id, peer_call_id)
            return session
        if session is not None or isinstance(signal, RemoteHangup):
            return None
        ended = await s.calls.get(call_id)
        if ended is None or not ended.state.is_final or ended.peer_call_id is not None:
            return None
        await self._hang_up_orphan(ended, peer_call_id)
        return None

    async def _hang_up_orphan(self, ended: Call, peer_call_id: str) -> None:
        """The far end has a call whose call here already ended (its dial outcome was unknown): end it
        there too, so the user is never left ringing or connected to nothing."""
        channel = self._s.channels.get(ended.endpoint.type)
        if channel is None:
            return
        ended.peer_call_id = peer_call_id
        await self._s.calls.save(ended)
        log.warning(
            "call %s ended before its far-end call %s was known: hanging that up", ended.id, peer_call_id
        )
        try:
            await channel.hangup(ended)
        except ChannelError:
            log.exception("could not hang up far-end call %s of ended call %s", peer_call_id, ended.id)

    async def _ringing(self, session: CallSession) -> None:
        async with self._s.change(session):
            call = session.call
            if call.state is CallState.CALLING:
                st.transition(call, CallState.RINGING, self._s.clock.now(), "ring")
                await self._s.calls.save(call)
                self._s.emit(call, ev.CallRinging)

    async def _answered(self, session: CallSession, sdp_answer: str) -> None:
        """The far end answered a call we placed, with its SDP answer."""
        s = self._s
        async with s.change(session):
            call = session.call
            if call.state not in st.ANSWERABLE or session.ended:
                return
            try:
                await session.leg.accept_answer(sdp_answer)
            except MediaError as exc:
                await self.end(session, ErrorCode.INVALID_REQUEST, f"bad SDP answer: {exc}")
                return
            session.deadlines.cancel(TimerKind.CONNECT)
            await self._establish(session)
            await s.admission.outcome(call, connected=True)
            record = session.record_on_answer
            if record is not None:
                await self._ops.start_recording_locked(session, record.fmt, record.custom_data)

    async def _hung_up(self, session: CallSession, code: ErrorCode, description: str) -> None:
        async with self._s.change(session):
            await self.end(
                session,
                code,
                description or "the far end hung up",
                source=HangupSource.ENDPOINT,
                tell_peer=False,
            )

    # -- what applications do --------------------------------------------------------------------------

    async def send_ringing(self, call_id: str) -> Call:
        session = await self._s.live(call_id)
        await self._ringing_checked(session)
        call = session.call
        channel = self._s.channels.get(call.endpoint.type)
        if call.direction is Direction.INBOUND and isinstance(channel, RingsBack):
            await channel.ring(call)
        return call

    async def _ringing_checked(self, session: CallSession) -> None:
        st.require(session.call, frozenset({CallState.CALLING, CallState.RINGING}), "ring")
        await self._ringing(session)

    async def pre_answer(self, call_id: str) -> Call:
        s = self._s
        session = await s.live(call_id)
        async with s.change(session):
            call = session.call
            st.require(call, frozenset({CallState.CALLING, CallState.RINGING}), "pre-answer")
            await self._pre_accept(session)
            st.transition(call, CallState.PRE_ESTABLISHED, s.clock.now(), "pre-answer")
            await s.calls.save(call)
            s.emit(call, ev.CallPreEstablished)
            return call

    async def answer(self, call_id: str) -> Call:
        session = await self._s.live(call_id)
        async with self._s.change(session):
            await self.answer_locked(session)
        return session.call

    async def answer_locked(self, session: CallSession) -> None:
        call = session.call
        if call.direction is not Direction.INBOUND:
            raise InvalidCallState(call.id, call.state.value, "answer an outbound")
        st.require(call, st.ANSWERABLE, "answer")
        await self._pre_accept(session)
        await self._channel_op(session, ChannelOp.ANSWER, await self._local_answer(session))
        session.leg.set_sending(True)
        await self._establish(session)

    async def _establish(self, session: CallSession) -> None:
        s = self._s
        st.transition(session.call, CallState.ESTABLISHED, s.clock.now(), "answer")
        if session.max_duration_s is not None:
            deadline = s.clock.monotonic() + session.max_duration_s
            session.deadlines.set(TimerKind.MAX_DURATION, deadline)
        await s.calls.save(session.call)
        s.emit(session.call, ev.CallEstablished)
        for hook in self.on_established:
            session.follow_ups.append(functools.partial(hook, session))

    async def _pre_accept(self, session: CallSession) -> None:
        if session.pre_answered:
            return
        await self._channel_op(session, ChannelOp.PRE_ANSWER, await self._local_answer(session))
        session.pre_answered = True

    async def _local_answer(self, session: CallSession) -> str:
        if session.local_sdp is None:
            if session.remote_sdp is None:
                raise InvalidCallState(session.id, session.call.state.value, "answer")
            session.local_sdp = await session.leg.answer(session.remote_sdp)
        return session.local_sdp

    async def _channel_op(self, session: CallSession, op: ChannelOp, sdp: str) -> None:
        """Run a signalling action; a peer that fails it fails the call, and the caller hears why."""
        try:
            match op:
                case ChannelOp.PRE_ANSWER:
                    await session.channel.pre_answer(session.call, sdp)
                case ChannelOp.ANSWER:
                    await session.channel.answer(session.call, sdp)
        except ChannelError as exc:
            await self.end(session, ErrorCode.SERVICE_UNAVAILABLE, str(exc))
            raise

    async def hangup(
        self,
        call_id: str,
        *,
        source: HangupSource = HangupSource.API,
        code: ErrorCode = ErrorCode.NORMAL_HANGUP,
        description: str = "hung up through the API",
    ) -> Call:
        session = await self._s.live(call_id)
        async with self._s.change(session):
            await self.end(session, code, description, source=source)
        return session.call

    # -- timers and media --------------------------------------------------------------------------------

    async def on_timer(self, session: CallSession, kind: TimerKind) -> None:
        """A lifecycle deadline passed (the session's lock is held)."""
        match kind:
            case TimerKind.CONNECT if session.call.state in st.ANSWERABLE:
                await self.end(session, ErrorCode.NO_ANSWER, "the callee did not answer in time")
            case TimerKind.MAX_DURATION:
                limit = session.max_duration_s
                await self.end(
                    session, ErrorCode.NORMAL_HANGUP, f"the call reached its maximum duration of {limit} s"
                )
            case TimerKind.MEDIA_CLOSED:
                await self.end(
                    session,
                    ErrorCode.NORMAL_HANGUP,
                    "the peer ended the media session",
                    source=HangupSource.ENDPOINT,
                )

    def media_closed(self, session: CallSession) -> None:
        deadline = self._s.clock.monotonic() + MEDIA_CLOSED_GRACE_S
        session.deadlines.set(TimerKind.MEDIA_CLOSED, deadline)

    # -- the end -------------------------------------------------------------------------------------------

    async def end(
        self,
        session: CallSession,
        code: ErrorCode,
        description: str,
        *,
        source: HangupSource = HangupSource.PLATFORM,
        tell_peer: bool = True,
        defer_far_end: bool = False,
    ) -> None:
        """End the call (its lock is held): tell the peer (or leave that to a durable job when
        `defer_far_end`), finish operations, close media, save the final state and its CDR, and queue
        the final event. Idempotent; if the final state could not be stored, ending it again stores it
        (as the call's own timer does every `STORE_END_RETRY_S`)."""
        call = session.call
        if session.ended:
            if not session.end_stored:
                await self._store_end(session)
            return
        session.ended = True
        if tell_peer:
            if not call.state.is_final:
                call.error = CallError(code, description)  # a refused call's final response names why
            await self._tell_far_end(call, session.channel, defer=defer_far_end)
        session.deadlines.clear()
        await self._ops.finish_all(session)
        for ending in self.on_ending:
            ending(session)
        call.media = session.leg.diagnostics().as_dict()
        try:
            await session.leg.close()
        except Exception:
            log.exception("closing media of call %s failed", call.id)
        final = st.final_state_for(call, code)
        st.end(call, final, self._s.clock.now(), source=source, code=code, description=description)
        await self._store_end(session)

    async def _store_end(self, session: CallSession) -> None:
        """Store the ended call's final state and CDR, then let it go and queue its final event. While
        that cannot be stored the call stays registered (its API and webhooks still find it, nothing is
        acknowledged as stored) and its timer tries again."""
        s = self._s
        call = session.call
        try:
            await s.calls.save(call)
        except Exception:
            session.deadlines.set(TimerKind.STORE_END, s.clock.monotonic() + STORE_END_RETRY_S)
            s.arm(session)
            raise
        session.end_stored = True
        session.deadlines.clear()
        s.arm(session)
        s.registry.remove(session)
        if call.direction is Direction.OUTBOUND and call.answer_time is None and call.peer_call_id:
            # Only a call that reached the peer went unanswered; one whose dial failed did not.
            await s.admission.outcome(call, connected=False)
        s.emit(call, ev.CallFinished if call.state is CallState.FINISHED else ev.CallFailed)
        if session.recording is None:
            session.inbox.put_nowait(Stop())
        # else the executor stops once the engine has reported the file (`on_recording_finished`).
        for hook in self.on_ended:
            session.follow_ups.append(functools.partial(hook, session))

    async def store_end_again(self, session: CallSession) -> None:
        """The call's `STORE_END` timer: store its end if it still is not."""
        if not session.ended or session.end_stored:
            return
        try:
            await self._store_end(session)
        except Exception as exc:
            log.warning("the end of call %s is still not stored (%s); trying again", session.id, exc)

    async def _tell_far_end(self, call: Call, channel: CallChannel, *, defer: bool) -> None:
        """Hang up (or reject) the far end; if that cannot be done now, a durable job keeps trying."""
        if call.peer_call_id is None:
            return
        reject = call.direction is Direction.INBOUND and call.state in (CallState.CALLING, CallState.RINGING)
        error = "the server was stopping"
        if not defer:
            try:
                await (channel.reject(call) if reject else channel.hangup(call))
                return
            except ChannelError as exc:
                log.warning("could not tell the far end that call %s ended: %s", call.id, exc)
                if not exc.retryable:
                    call.hangup_delivery = HangupDelivery.FAILED
                    call.hangup_delivery_error = f"the far end refused the hang-up: {exc}"
                    return
                error = str(exc)
        await self._far_end.request(call, reject=reject, error=error)

    async def shutdown(self, grace_s: float) -> None:
        """End every live call at once (the process is stopping); far ends are told within `grace_s`,
        and those not told by then are told by the next start."""
        async with asyncio.TaskGroup() as tasks:
            for session in self._s.registry.live():
                tasks.create_task(self._end_at_shutdown(session))
        await self._s.jobs.drain(grace_s)

    async def _end_at_shutdown(self, session: CallSession) -> None:
        try:
            async with self._s.change(session):
                await self.end(
                    session,
                    ErrorCode.SERVICE_UNAVAILABLE,
                    "the platform is shutting down",
                    defer_far_end=True,
                )
        except Exception:
            log.exception("could not end call %s at shutdown", session.id)

    async def recover(self, calls: Sequence[Call] | None = None) -> list[Call]:
        """End the calls this server carried when it stopped without ending them (a crash), or `calls`
        (adopted from another server that stopped): their media is gone. Each gets its final state, CDR
        and final event, and its far end is told."""
        s = self._s
        ended = []
        for call in await s.calls.unfinished() if calls is None else calls:
            reject = call.direction is Direction.INBOUND and call.state in (
                CallState.CALLING,
                CallState.RINGING,
            )
            code = ErrorCode.SERVICE_UNAVAILABLE
            st.end(
                call,
                st.final_state_for(call, code),
                s.clock.now(),
                source=HangupSource.PLATFORM,
                code=code,
                description="the server stopped while the call was live; its media was lost",
            )
            if call.peer_call_id is not None:
                await self._far_end.request(call, reject=reject, error="the server stopped")
            await s.calls.save(call)
            s.emit(call, ev.CallFinished if call.state is CallState.FINISHED else ev.CallFailed)
            await s.publisher.flush(call.id)
            ended.append(call)
        if ended and calls is None:
            log.warning("ended %d calls left live when this server last stopped", len(ended))
        return ended


__all__ = ["ChannelOp", "InboundCall", "Lifecycle", "RecordingRequest", "assign_target"]
