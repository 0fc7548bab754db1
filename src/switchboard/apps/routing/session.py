"""Routing one call: choose its route, then try the route's destinations until one takes the call.

An ENDPOINT destination is a child call placed with `CallControl.create_call` and bridged to the routed
call (`connect`) once it answers; it fails on busy, no answer within `connectTimeout`, unreachable, a
refused policy or an error, and the next destination is tried. A URL destination names the endpoint to
try. An APPLICATION destination is an application transfer. When every destination failed, the routed
call is hung up with the last reason. The routed call ending stops routing and hangs up the child.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from switchboard.apps.routing.book import RouteBook
from switchboard.apps.routing.matching import CallFacts, choose_route, destination_order, within_windows
from switchboard.apps.routing.schemas import (
    ApplicationDestination,
    CallsApplication,
    Destination,
    EndpointDestination,
    PhoneEndpoint,
    Recording,
    RouteResponse,
    RouteStatus,
    SipEndpoint,
    UrlDestination,
    UrlDestinationRequest,
    ViberEndpoint,
    WebRtcEndpoint,
    WebSocketEndpoint,
    WhatsAppEndpoint,
)
from switchboard.apps.routing.schemas import Endpoint as RouteEndpoint
from switchboard.apps.routing.url_destination import UrlDestinationFailed, ask
from switchboard.core import events as ev
from switchboard.core.control import CallControl, CallRequest, RecordingRequest
from switchboard.core.errors import ChannelError, SwitchboardError, UnsupportedEndpoint
from switchboard.core.models import (
    Call,
    CallState,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    HangupSource,
    InboundAction,
    InboundTarget,
)

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 30
DEFAULT_TRANSFER_TIMEOUT_S = 30
PLACEHOLDER = re.compile(r"\$\{(?:from|to)\}")


@dataclass(frozen=True, slots=True)
class Failure:
    code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class RecordedLeg:
    """A child call recorded through a destination's `recording` option, until its file is ready."""

    correlation_id: str
    route_id: str
    route_name: str
    endpoint: Endpoint


@dataclass(slots=True)
class Deps:
    control: CallControl
    book: RouteBook
    http: httpx.AsyncClient
    now: Callable[[], datetime]
    """The current time in the routing time zone (time windows are read in it)."""
    rng: random.Random
    recorded: dict[str, RecordedLeg]


class RoutedCallEnded(Exception):
    pass


def failure_of(exc: SwitchboardError) -> Failure:
    if exc.status_hint == 403:
        code = ErrorCode.FORBIDDEN
    elif isinstance(exc, UnsupportedEndpoint):
        code = ErrorCode.DESTINATION_UNAVAILABLE
    elif isinstance(exc, ChannelError):
        code = ErrorCode.SERVICE_UNAVAILABLE
    else:
        code = ErrorCode.INVALID_DESTINATION
    return Failure(code, str(exc))


def failure_of_call(call: Call) -> Failure:
    if call.error is not None:
        return Failure(call.error.code, call.error.description or call.state.value)
    codes = {CallState.BUSY: ErrorCode.BUSY, CallState.NO_ANSWER: ErrorCode.NO_ANSWER}
    return Failure(codes.get(call.state, ErrorCode.DESTINATION_UNAVAILABLE), f"the call ended {call.state}")


def call_facts(call: Call) -> CallFacts:
    return CallFacts(
        endpoint_type=call.endpoint.type.value,
        from_=call.from_,
        to=call.to,
        sip_trunk_id=call.endpoint.sip_trunk_id,
        headers=call.sip_headers,
        custom_data=call.custom_data,
        calls_configuration_id=call.calls_configuration_id,
    )


class RoutingSession:
    def __init__(self, deps: Deps, call: Call) -> None:
        self._d = deps
        self.call = call
        self._events: asyncio.Queue[ev.CallEvent] = asyncio.Queue()
        self._child: str | None = None
        """A child call placed and not yet bridged (hung up if routing stops)."""

    def deliver(self, event: ev.CallEvent) -> None:
        self._events.put_nowait(event)

    async def run(self) -> None:
        try:
            await self._route()
        except RoutedCallEnded:
            log.info("call %s ended while it was being routed", self.call.id)
        finally:
            if self._child is not None and self._d.control.is_live(self._child):
                await self._hang_up(self._child, ErrorCode.NORMAL_HANGUP, "the routed call ended")

    async def _next(self) -> ev.CallEvent:
        event = await self._events.get()
        if event.call.id == self.call.id and isinstance(event, ev.CallFinished | ev.CallFailed):
            raise RoutedCallEnded
        return event

    async def _chosen(self) -> RouteResponse | None:
        target = self.call.target
        if target is not None and target.id:
            route = await self._d.book.get(target.id)
            return route if route is not None and route.status is RouteStatus.ENABLED else None
        return choose_route(await self._d.book.all(), call_facts(self.call))

    async def _route(self) -> None:
        route = await self._chosen()
        if route is None:
            await self._hang_up(
                self.call.id, ErrorCode.DESTINATION_NOT_FOUND, "no enabled route matches the call"
            )
            return
        last = Failure(ErrorCode.DESTINATION_NOT_FOUND, "the route has no destination")
        for index in destination_order(route.destinations, self._d.rng):
            failure = await self._try(route, route.destinations[index])
            if failure is None:
                log.info("call %s routed by %s to destinations[%d]", self.call.id, route.id, index)
                return
            log.info(
                "call %s: route %s destinations[%d] failed: %s", self.call.id, route.id, index, failure.reason
            )
            last = Failure(failure.code, f"destinations[{index}]: {failure.reason}")
        await self._hang_up(
            self.call.id,
            last.code,
            f"every destination of route {route.name!r} failed; the last, {last.reason}",
        )

    async def _try(self, route: RouteResponse, destination: Destination) -> Failure | None:
        match destination:
            case EndpointDestination() | ApplicationDestination() if not within_windows(
                destination.allowed_time_windows, self._d.now()
            ):
                return Failure(ErrorCode.DESTINATION_UNAVAILABLE, "outside its allowedTimeWindows")
            case EndpointDestination(value=value, connect_timeout=timeout, recording=recording):
                return await self._dial(route, value, timeout, recording)
            case UrlDestination():
                request = UrlDestinationRequest(
                    route_id=route.id,
                    call_id=self.call.id,
                    from_=self.call.from_,
                    to=self.call.to,
                    start_time=self.call.start_time or self._d.now(),
                )
                try:
                    reply = await ask(self._d.http, destination, request)
                except UrlDestinationFailed as exc:
                    return Failure(ErrorCode.SERVICE_UNAVAILABLE, str(exc))
                return await self._dial(route, reply.value, reply.connect_timeout, reply.recording)
            case ApplicationDestination(value=CallsApplication() as app):
                target = InboundTarget(InboundAction.SUBSCRIPTION, app.application_id)
                return await self._transfer(target, app.timeout, app.custom_data)
            case ApplicationDestination(value=app):
                return await self._transfer(
                    InboundTarget(InboundAction.CONTACT_CENTER), None, app.custom_data
                )
        return Failure(ErrorCode.INVALID_DESTINATION, f"destination type {destination.type} is not known")

    def _endpoint(self, value: RouteEndpoint) -> tuple[Endpoint, str]:
        """The child call's endpoint and caller id; an omitted number or caller id is the routed call's."""
        call = self.call
        match value:
            case WhatsAppEndpoint():
                # the sender a WhatsApp user called is the natural caller id toward WhatsApp
                default_from = call.to if call.endpoint.type is EndpointType.WHATSAPP else call.from_
                number = value.phone_number or call.to
                return Endpoint(EndpointType.WHATSAPP, phone_number=number), value.from_ or default_from
            case SipEndpoint():
                endpoint = Endpoint(
                    EndpointType.SIP, username=value.username or call.to, sip_trunk_id=value.sip_trunk_id
                )
                return endpoint, value.from_ or call.from_
            case PhoneEndpoint():
                return Endpoint(
                    EndpointType.PHONE, phone_number=value.phone_number or call.to
                ), value.from_ or call.from_
            case ViberEndpoint():
                return Endpoint(
                    EndpointType.VIBER, phone_number=value.phone_number or call.to
                ), value.from_ or call.from_
            case WebRtcEndpoint():
                return Endpoint(EndpointType.WEBRTC, identity=value.identity or call.to), call.from_
            case WebSocketEndpoint():
                return Endpoint(
                    EndpointType.WEBSOCKET, identity=value.websocket_endpoint_config_id
                ), call.from_

    def _custom_headers(self, value: RouteEndpoint) -> dict[str, str]:
        """A SIP destination's `customHeaders`, `${from}` and `${to}` naming the routed call's."""
        if not isinstance(value, SipEndpoint) or not value.custom_headers:
            return {}
        names = {"${from}": self.call.from_, "${to}": self.call.to}
        return {
            name: PLACEHOLDER.sub(lambda m: names[m.group(0)], text)
            for name, text in value.custom_headers.items()
        }

    async def _dial(
        self,
        route: RouteResponse,
        value: RouteEndpoint,
        connect_timeout: int | None,
        recording: Recording | None,
    ) -> Failure | None:
        control = self._d.control
        endpoint, from_ = self._endpoint(value)
        headers = self._custom_headers(value)
        try:
            control.admission.check_bridge(self.call.endpoint, endpoint)
            child = await control.create_call(
                CallRequest(
                    endpoint=endpoint,
                    from_=from_,
                    target=InboundTarget(InboundAction.CALL_ROUTING, route.id),
                    connect_timeout_s=connect_timeout or DEFAULT_CONNECT_TIMEOUT_S,
                    record=RecordingRequest(custom_data=dict(recording.custom_data or {}))
                    if recording
                    else None,
                    parent_call_id=self.call.id,
                    sip_headers=headers,
                )
            )
        except SwitchboardError as exc:
            refused = failure_of(exc)
            return Failure(refused.code, f"{endpoint.type} {endpoint.address}: {refused.reason}")
        self._child = child.id
        if recording is not None:
            self._d.recorded[child.id] = RecordedLeg(self.call.id, route.id, route.name, endpoint)
        failure = await self._answered(child.id)
        if failure is not None:
            self._child = None
            self._d.recorded.pop(child.id, None)
            return Failure(failure.code, f"{endpoint.type} {endpoint.address}: {failure.reason}")
        try:
            await control.connect(self.call.id, child.id)
        except SwitchboardError as exc:
            return failure_of(exc)
        self._child = None
        return None

    async def _answered(self, child_id: str) -> Failure | None:
        """Wait for the child call to answer (None) or end (why)."""
        while True:
            event = await self._next()
            if event.call.id != child_id:
                continue
            if isinstance(event, ev.CallRinging):
                await self._ring_back()
            elif isinstance(event, ev.CallEstablished):
                return None
            elif isinstance(event, ev.CallFinished | ev.CallFailed):
                return failure_of_call(event.call)

    async def _ring_back(self) -> None:
        """The child rings: so does the routed call for its caller (a SIP caller gets 180)."""
        if self.call.direction is not Direction.INBOUND:
            return
        try:
            await self._d.control.send_ringing(self.call.id)
        except SwitchboardError as exc:
            log.info("call %s: could not ring back: %s", self.call.id, exc)

    async def _transfer(
        self, target: InboundTarget, accept_within: int | None, custom_data: dict[str, str] | None
    ) -> Failure | None:
        try:
            transfer_id = await self._d.control.transfer(
                self.call.id,
                target,
                timeout_s=accept_within or DEFAULT_TRANSFER_TIMEOUT_S,
                custom_data=dict(custom_data or {}),
            )
        except SwitchboardError as exc:
            return failure_of(exc)
        while True:
            event = await self._next()
            if not isinstance(event, ev.TransferEvent) or event.transfer_id != transfer_id:
                continue
            if isinstance(event, ev.TransferFinished):
                return None
            if isinstance(event, ev.TransferFailed):
                return Failure(ErrorCode.DESTINATION_UNAVAILABLE, f"{target}: {event.reason}")

    async def _hang_up(self, call_id: str, code: ErrorCode, reason: str) -> None:
        try:
            await self._d.control.hangup(call_id, source=HangupSource.PLATFORM, code=code, description=reason)
        except SwitchboardError as exc:
            log.info("could not hang up call %s: %s", call_id, exc)
