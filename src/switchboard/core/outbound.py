"""Placing calls: admission first (PSTN ban, the endpoint's policies), then media, then the channel dials."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from switchboard.core import events as ev
from switchboard.core.errors import ChannelError, SwitchboardError
from switchboard.core.lifecycle import Lifecycle, assign_target
from switchboard.core.models import (
    Call,
    Direction,
    Endpoint,
    ErrorCode,
    InboundAction,
    InboundTarget,
)
from switchboard.core.services import Services
from switchboard.core.session import CallSession, RecordingRequest
from switchboard.core.timers import TimerKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallRequest:
    endpoint: Endpoint
    from_: str
    calls_configuration_id: str | None = None
    application_id: str | None = None
    target: InboundTarget | None = None
    """The application that places the call and has it (default: the calls configuration's)."""
    connect_timeout_s: int = 60
    max_duration_s: int | None = None
    """Hang up this long after the call is answered (Infobip's `maxDuration`)."""
    record: RecordingRequest | None = None
    """Record the call from the moment it is answered (Infobip's `recording`)."""
    custom_data: dict[str, str] = field(default_factory=dict)
    parent_call_id: str | None = None
    external_id: str | None = None
    """The application's own id for the call (Infobip's `externalId`), echoed on the call."""
    sip_headers: dict[str, str] = field(default_factory=dict)
    """`X-` headers for the INVITE of a SIP call."""

    def owner(self) -> InboundTarget | None:
        if self.target is not None:
            return self.target
        if self.calls_configuration_id:
            return InboundTarget(InboundAction.SUBSCRIPTION, self.calls_configuration_id)
        return None


def failure_code(exc: SwitchboardError) -> ErrorCode:
    """The error code a call placement that raised `exc` ends with (a peer's 403 is FORBIDDEN too)."""
    if exc.status_hint == 403:
        return ErrorCode.FORBIDDEN
    if isinstance(exc, ChannelError):
        return ErrorCode.SERVICE_UNAVAILABLE
    return ErrorCode.INVALID_REQUEST


class Outbound:
    def __init__(self, services: Services, lifecycle: Lifecycle) -> None:
        self._s = services
        self._life = lifecycle

    async def create_call(self, request: CallRequest) -> Call:
        """Place a call; nothing is dialled unless admission allows it."""
        s = self._s
        s.admission.check_bridge(request.endpoint)
        channel = s.channel_for(request.endpoint.type)
        call = Call(
            id=s.ids(),
            endpoint=request.endpoint,
            direction=Direction.OUTBOUND,
            from_=request.from_,
            to=request.endpoint.address,
            custom_data=dict(request.custom_data),
            sip_headers=dict(request.sip_headers),
            parent_call_id=request.parent_call_id,
            external_id=request.external_id,
            start_time=s.clock.now(),
        )
        owner = request.owner()
        if owner is not None:
            assign_target(call, owner)
        if request.application_id:
            call.application_id = request.application_id
        await channel.prepare_outbound(call)
        await s.admission.check_outbound(call)
        session = await s.open_session(call, channel)
        session.max_duration_s = request.max_duration_s
        session.record_on_answer = request.record
        try:
            async with s.change(session):
                offer = await session.leg.offer()
                await s.calls.save(call)
                s.emit(call, ev.CallStarted)
            result = await channel.dial(call, offer)
        except SwitchboardError as exc:
            async with s.change(session):
                await self._life.end(session, failure_code(exc), str(exc), tell_peer=False)
            raise
        peer_call_id = result.peer_call_id
        async with s.change(session):
            if session.ended:
                if peer_call_id is not None:
                    await self._hang_up_dialled(session, peer_call_id)
                return call
            if peer_call_id is None:
                log.warning(
                    "call %s: the channel could not confirm the dial; waiting for its signals", call.id
                )
            else:
                s.registry.bind_peer(session, peer_call_id)
            session.deadlines.set(TimerKind.CONNECT, s.clock.monotonic() + request.connect_timeout_s)
            await s.calls.save(call)
        if peer_call_id is not None:
            await self._life.replay_early(session)
        return call

    async def _hang_up_dialled(self, session: CallSession, peer_call_id: str) -> None:
        """The call ended while it was being dialled: its peer call exists only now, so end that too."""
        call = session.call
        call.peer_call_id = peer_call_id
        await self._s.calls.save(call)
        try:
            await session.channel.hangup(call)
        except ChannelError:
            log.exception("could not hang up call %s, ended while it was dialled", call.id)
        await self._s.admission.outcome(call, connected=False)
