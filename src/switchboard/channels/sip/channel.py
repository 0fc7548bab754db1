"""The SIP channel: core call actions become SIP on a `SipEndpoint`, SIP calls become core calls.

Inbound INVITEs are taken only from a STATIC trunk's source hosts (anyone else gets 403 and nothing
else happens) and enter call routing (`InboundAction.CALL_ROUTING`) with the trunk's id. Outbound calls
go to the trunk's destination hosts (or a REGISTERED trunk's current contact), the next host when one does
not take the call. A trunk's `channelLimit` is enforced both ways. Hold (re-INVITE or UPDATE) is answered
here from our last SDP: it is never passed on to the other leg of a bridge. Keys a peer sends in INFO
reach the call as keys from the media do.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace

from switchboard.channels.sip.digest import Challenge
from switchboard.channels.sip.endpoint import IncomingCall, OptionsResult, OutgoingCall, SipCall, SipEndpoint
from switchboard.channels.sip.events import (
    AckTimeout,
    Answered,
    Cancelled,
    DialogRequest,
    Ended,
    Failed,
    HungUp,
    Progress,
    SipCallEvent,
)
from switchboard.channels.sip.info_dtmf import parse_info_dtmf
from switchboard.channels.sip.message import Address, Request, SipURI
from switchboard.channels.sip.registrations import TrunkRegistrations
from switchboard.channels.sip.transport import Peer, TransportName
from switchboard.channels.sip.trunks import (
    HostPort,
    SelectionStrategy,
    SipTrunk,
    StaticTrunk,
    TrunkDirectory,
)
from switchboard.core.control import CallControl
from switchboard.core.errors import ChannelError, SwitchboardError
from switchboard.core.lifecycle import InboundCall
from switchboard.core.models import (
    Call,
    Direction,
    Endpoint,
    EndpointType,
    ErrorCode,
    InboundAction,
    InboundTarget,
)
from switchboard.core.ports import DialResult
from switchboard.media.engine import Codec, LegSpec, TransportProfile

log = logging.getLogger(__name__)

DEFAULT_LEG = LegSpec(profile=TransportProfile.RTP, codecs=(Codec.PCMU, Codec.PCMA, Codec.TELEPHONE_EVENT))

HEALTH_INTERVAL_S = 30.0
"""How often the destination hosts of trunks with `sipOptions` are pinged."""

REJECT_STATUS: dict[ErrorCode, int] = {
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.REJECTED: 603,
    ErrorCode.BUSY: 486,
    ErrorCode.NO_ANSWER: 480,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.DESTINATION_NOT_FOUND: 404,
    ErrorCode.DESTINATION_UNAVAILABLE: 480,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.INVALID_DESTINATION: 484,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.MEDIA_FAILURE: 488,
    ErrorCode.CANCELLED: 487,
}
"""The final response an inbound call we refuse gets, by the call's error code."""


FAILOVER_STATUSES = frozenset({408, 503})
"""Final statuses after which an outbound call tries the trunk's next destination host (408 is also
what a timeout or transport error reads as)."""


def failure_code(status: int) -> ErrorCode:
    """How a failed INVITE of ours ends its call (RFC 3261 §21 classes)."""
    match status:
        case 486 | 600:
            return ErrorCode.BUSY
        case 408 | 480:
            return ErrorCode.NO_ANSWER
        case 603:
            return ErrorCode.REJECTED
        case 403:
            return ErrorCode.FORBIDDEN
        case 404 | 604:
            return ErrorCode.DESTINATION_NOT_FOUND
        case 487:
            return ErrorCode.CANCELLED
        case 484 | 485:
            return ErrorCode.INVALID_DESTINATION
        case _ if status >= 500:
            return ErrorCode.SERVICE_UNAVAILABLE
        case _:
            return ErrorCode.DESTINATION_UNAVAILABLE


@dataclass(slots=True)
class _Attempt:
    """An outbound call's INVITE as sent, and the destinations still to try when no host takes it."""

    call: Call
    sdp: bytes
    remaining: list[tuple[Peer, SipURI]]


@dataclass(slots=True)
class _Leg:
    """One SIP call of the channel: its dialog usage, trunk and our last SDP (for hold answers)."""

    sip: SipCall
    trunk: SipTrunk
    local_sdp: bytes = b""


def hold_answer(local_sdp: bytes, offer: bytes) -> bytes:
    """Our answer to a re-offer that only changes direction (hold, resume): our last SDP with the
    matching direction (RFC 3264 §6.1, §8.4) and the next session version."""
    text = offer.decode(errors="replace")
    direction = "sendrecv"
    for attribute, answer in (
        ("a=sendonly", "recvonly"),
        ("a=inactive", "inactive"),
        ("a=recvonly", "sendonly"),
    ):
        if attribute in text:
            direction = answer
            break
    lines = [
        line
        for line in local_sdp.decode(errors="replace").split("\r\n")
        if line not in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")
    ]
    out: list[str] = []
    for line in lines:
        if line.startswith("o="):
            parts = line.split(" ")
            if len(parts) >= 3 and parts[2].isdigit():
                parts[2] = str(int(parts[2]) + 1)
            line = " ".join(parts)
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    out.append(f"a={direction}")
    return ("\r\n".join(out) + "\r\n").encode()


class SipChannel:
    endpoint_type = EndpointType.SIP
    early_media = True
    """183 with SDP carries media before the answer."""

    def __init__(
        self, endpoint: SipEndpoint, trunks: TrunkDirectory, registrations: TrunkRegistrations | None = None
    ) -> None:
        self.endpoint = endpoint
        self.trunks = trunks
        self.registrations = registrations
        self._reporter: CallControl | None = None
        self._legs: dict[str, _Leg] = {}
        self._trunk_cache: dict[str, SipTrunk] = {}
        self._round_robin: dict[str, itertools.count[int]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._answering: dict[tuple[str, str], bool] = {}
        """(trunk id, host) → whether it answered the last OPTIONS health check."""
        self.health_interval_s = HEALTH_INTERVAL_S
        self.ready = asyncio.Event()
        """Set once the channel listens."""

    def attach(self, reporter: CallControl) -> None:
        """Name whom to report calls to (the core's `CallControl`)."""
        self._reporter = reporter

    @property
    def _core(self) -> CallControl:
        if self._reporter is None:
            raise RuntimeError("SipChannel.attach was not called")
        return self._reporter

    async def run(self) -> None:
        """Listen and take calls until cancelled."""
        async with self.endpoint, asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(self._keep_checking_health())
            self.ready.set()
            try:
                while True:
                    incoming = await self.endpoint.incoming.get()
                    tasks.create_task(self._inbound(incoming))
            finally:
                self._tasks = None
                self.ready.clear()

    async def _keep_checking_health(self) -> None:
        while True:
            await self.check_health()
            await asyncio.sleep(self.health_interval_s)

    async def check_health(self) -> None:
        """Ping every destination host of the trunks with `sipOptions` (RFC 3261 §11); a host that does
        not answer is skipped when calls are placed, until it answers again."""
        pings: list[tuple[tuple[str, str], asyncio.Task[OptionsResult]]] = []
        async with asyncio.TaskGroup() as tasks:
            for trunk in await self.trunks.list():
                if not isinstance(trunk, StaticTrunk) or not trunk.sip_options or not trunk.enabled:
                    continue
                for host in trunk.destination_hosts:
                    peer, uri = self._host_target(trunk, host, None)
                    pings.append(((trunk.id, str(host)), tasks.create_task(self.endpoint.options(uri, peer))))
        for key, ping in pings:
            self._answering[key] = ping.result().alive

    # -- the core's port ---------------------------------------------------------------------------

    def leg_spec(self, call: Call) -> LegSpec:
        """The trunk's media leg; its SDP names `[sip] public_address` when one is configured, as Via and
        Contact do."""
        trunk = self._trunk_cache.get(call.endpoint.sip_trunk_id or "")
        spec = trunk.leg_spec() if trunk is not None else DEFAULT_LEG
        public = self.endpoint.config.public_address
        return replace(spec, advertised_address=public) if public else spec

    async def prepare_outbound(self, call: Call) -> None:
        trunk_id = call.endpoint.sip_trunk_id
        if not trunk_id:
            raise SwitchboardError("endpoint.sipTrunkId: required for a SIP endpoint")
        trunk = await self.trunks.get(trunk_id)
        if trunk is None:
            raise SwitchboardError(f"endpoint.sipTrunkId: no SIP trunk {trunk_id!r}")
        if not trunk.enabled:
            raise SwitchboardError(f"endpoint.sipTrunkId: SIP trunk {trunk_id!r} is disabled")
        if isinstance(trunk, StaticTrunk) and not trunk.destination_hosts:
            raise SwitchboardError(f"endpoint.sipTrunkId: SIP trunk {trunk_id!r} has no destinationHosts")
        self._trunk_cache[trunk.id] = trunk

    async def dial(self, call: Call, sdp_offer: str) -> DialResult:
        trunk = self._trunk_cache.get(call.endpoint.sip_trunk_id or "") or await self.trunks.require(
            call.endpoint.sip_trunk_id or ""
        )
        targets = self._destinations(trunk, call)
        if not self.trunks.try_acquire(trunk):
            raise ChannelError(f"SIP trunk {trunk.id} is at its channelLimit ({trunk.channel_limit})")
        sdp = sdp_offer.encode()
        outgoing = self._invite(call, targets[0], sdp)
        peer_call_id = outgoing.call_id
        self._legs[peer_call_id] = _Leg(outgoing, trunk, sdp)
        outgoing.on_offer = lambda request: self._hold(peer_call_id, request)
        attempt = _Attempt(call, sdp, list(targets[1:]))
        self._spawn(self._follow_outgoing(peer_call_id, trunk, attempt))
        return DialResult(peer_call_id=peer_call_id)

    def _invite(self, call: Call, target: tuple[Peer, SipURI], sdp: bytes) -> OutgoingCall:
        peer, uri = target
        host, _ = self.endpoint.bound_address(peer.transport)
        from_ = Address(SipURI(host, call.from_ or None))
        headers = custom_headers(call.sip_headers)
        return self.endpoint.invite(uri, peer, from_=from_, sdp=sdp, headers=headers)

    async def pre_answer(self, call: Call, sdp_answer: str) -> None:
        leg, incoming = self._incoming(call)
        leg.local_sdp = sdp_answer.encode()
        if not incoming.progress(183, leg.local_sdp):
            raise ChannelError(f"call {call.id}: the SIP caller is gone")

    async def ring(self, call: Call) -> None:
        """180 without SDP; nothing when the INVITE has its final response already."""
        _, incoming = self._incoming(call)
        incoming.progress(180)

    async def answer(self, call: Call, sdp_answer: str) -> None:
        leg, incoming = self._incoming(call)
        leg.local_sdp = sdp_answer.encode()
        if not incoming.answer(leg.local_sdp):
            raise ChannelError(f"call {call.id}: the SIP caller is gone")

    async def reject(self, call: Call) -> None:
        leg = self._legs.get(call.peer_call_id or "")
        if leg is None or not isinstance(leg.sip, IncomingCall):
            return
        code = call.error.code if call.error is not None else ErrorCode.SERVICE_UNAVAILABLE
        status = REJECT_STATUS.get(code, 503)
        reason = call.error.description if call.error is not None else ""
        leg.sip.reject(status, headers=[("Reason", reason_header(status, code.value, reason))])

    async def hangup(self, call: Call) -> None:
        leg = self._legs.get(call.peer_call_id or "")
        if leg is None:
            return
        sip = leg.sip
        if isinstance(sip, IncomingCall) and sip.pending:
            await self.reject(call)
        elif isinstance(sip, OutgoingCall) and sip.final is None:
            sip.cancel()
        elif sip.dialog is not None and not sip.ended:
            self._spawn(sip.bye())

    # -- inbound ------------------------------------------------------------------------------------

    async def _identify(self, incoming: IncomingCall) -> SipTrunk | None:
        """The trunk an INVITE came over: a STATIC trunk's source host, or the flow a REGISTERED trunk's
        PBX registered from (challenged when the trunk wants INVITEs authenticated)."""
        peer = incoming.peer
        static = await self.trunks.identify(peer.host, peer.port)
        if static is not None or self.registrations is None:
            return static
        trunk = await self.registrations.trunk_at((peer.transport, peer.host, peer.port))
        if trunk is None or not trunk.invite_authentication:
            return trunk
        if isinstance(self.registrations.check_invite(trunk, incoming.invite), Challenge):
            incoming.reject(401, headers=self.registrations.digest.challenge(self.endpoint.now))
            return None
        return trunk

    async def _inbound(self, incoming: IncomingCall) -> None:
        trunk = await self._identify(incoming)
        if trunk is None:
            if incoming.pending:
                reason = reason_header(403, "FORBIDDEN", "not a source of any SIP trunk")
                incoming.reject(403, headers=[("Reason", reason)])
            return
        if not trunk.enabled:
            incoming.reject(403, headers=[("Reason", reason_header(403, "FORBIDDEN", "trunk disabled"))])
            return
        if not self.trunks.try_acquire(trunk):
            incoming.reject(
                503, headers=[("Reason", reason_header(503, "SERVICE_UNAVAILABLE", "channelLimit"))]
            )
            return
        self._trunk_cache[trunk.id] = trunk
        peer_call_id = incoming.call_id
        leg = _Leg(incoming, trunk)
        self._legs[peer_call_id] = leg
        incoming.on_offer = lambda request: self._hold(peer_call_id, request)
        try:
            await self._admit(incoming, trunk)
            await self._follow(incoming, Direction.INBOUND)
        finally:
            self._legs.pop(peer_call_id, None)
            self.trunks.release(trunk.id)

    async def _admit(self, incoming: IncomingCall, trunk: SipTrunk) -> None:
        invite = incoming.invite
        caller = invite.from_
        callee = invite.uri.user or invite.to.uri.user or ""
        inbound = InboundCall(
            endpoint=Endpoint(
                EndpointType.SIP,
                username=caller.uri.user,
                sip_trunk_id=trunk.id,
                display_name=caller.display_name,
            ),
            to=callee,
            peer_call_id=incoming.call_id,
            remote_offer=incoming.sdp.decode(errors="replace"),
            target=InboundTarget(InboundAction.CALL_ROUTING),
            custom_data=sip_headers(invite),
            sip_headers=sip_headers(invite),
        )
        # 100 Trying went out with the INVITE's arrival; 180 waits for the call to ring somewhere (`ring`).
        call = await self._core.receive_inbound(inbound)
        if call is None and incoming.pending:
            incoming.reject(503, headers=[("Reason", reason_header(503, "SERVICE_UNAVAILABLE", "not taken"))])

    # -- outbound -----------------------------------------------------------------------------------

    def _destinations(self, trunk: SipTrunk, call: Call) -> list[tuple[Peer, SipURI]]:
        """Where to send the INVITE, in the order to try: a STATIC trunk's answering hosts (from the
        next one in turn for ROUND_ROBIN), or a REGISTERED trunk's contact."""
        user = call.endpoint.username or call.to or None
        if isinstance(trunk, StaticTrunk):
            hosts = [h for h in trunk.destination_hosts if self._answering.get((trunk.id, str(h)), True)]
            if not hosts:
                raise ChannelError(f"SIP trunk {trunk.id}: no destination host answers OPTIONS")
            start = 0
            if trunk.strategy is SelectionStrategy.ROUND_ROBIN:
                start = next(self._round_robin.setdefault(trunk.id, itertools.count())) % len(hosts)
            ordered = hosts[start:] + hosts[:start]
            return [self._host_target(trunk, host, user) for host in ordered]
        registrar = self.registrations.registrar if self.registrations else None
        binding = registrar.contact(trunk.username, self.endpoint.now) if registrar else None
        if binding is None:
            raise ChannelError(f"SIP trunk {trunk.id} is not registered")
        source_transport, source_host, source_port = binding.source
        uri = binding.contact.uri
        contact_uri = SipURI(uri.host, user or uri.user, uri.port, uri.scheme, uri.params)
        return [(Peer(source_transport, source_host, source_port), contact_uri)]  # type: ignore[arg-type]

    def _host_target(self, trunk: StaticTrunk, host: HostPort, user: str | None) -> tuple[Peer, SipURI]:
        transport: TransportName = "tls" if trunk.tls else self._plain_transport()
        params = () if transport == "udp" else (("transport", transport),)
        port = trunk.destination_port(host)
        return Peer(transport, host.host, port), SipURI(host.host, user, port, params=params)

    def _plain_transport(self) -> TransportName:
        transports = {spec.transport for spec in self.endpoint.config.listen}
        return "udp" if "udp" in transports else "tcp"

    async def _follow_outgoing(self, peer_call_id: str, trunk: SipTrunk, attempt: _Attempt) -> None:
        """Report our INVITE's outcome under its first Call-ID; an INVITE that no host answered (timeout,
        transport error, 408, 503) is sent to the trunk's next destination host instead."""
        try:
            while True:
                leg = self._legs[peer_call_id]
                event = await leg.sip.events.get()
                if self._fails_over(leg.sip, event) and attempt.remaining:
                    target = attempt.remaining.pop(0)
                    log.info("SIP trunk %s: %s, trying %s", trunk.id, event, target[1])
                    leg.sip = self._invite(attempt.call, target, attempt.sdp)
                    leg.sip.on_offer = lambda request: self._hold(peer_call_id, request)
                    continue
                if await self._report(peer_call_id, event):
                    return
        finally:
            self._legs.pop(peer_call_id, None)
            self.trunks.release(trunk.id)

    @staticmethod
    def _fails_over(sip: SipCall, event: SipCallEvent) -> bool:
        """The host did not take the call (no answer at all, 408, 503); the callee's own answers (486,
        603, ...) and our own CANCEL are final."""
        if not isinstance(event, Failed) or not isinstance(sip, OutgoingCall) or sip.cancel_requested:
            return False
        return event.status in FAILOVER_STATUSES

    # -- both ---------------------------------------------------------------------------------------

    async def _follow(self, sip: SipCall, direction: Direction) -> None:
        """Report the call's SIP events to the core until the call is over."""
        peer_call_id = sip.call_id
        while True:
            event = await sip.events.get()
            if await self._report(peer_call_id, event):
                return

    async def _report(self, peer_call_id: str, event: SipCallEvent) -> bool:
        """Tell the core; True when the call is over."""
        core = self._core
        match event:
            case Progress():
                await core.remote_ringing(peer_call_id)
            case Answered(response=response):
                await core.remote_answered(peer_call_id, response.body.decode(errors="replace"))
            case Failed(status=status, reason=reason):
                await core.remote_hangup(
                    peer_call_id, code=failure_code(status), description=f"{status} {reason}"
                )
                return True
            case Cancelled():
                await core.remote_hangup(
                    peer_call_id, code=ErrorCode.CANCELLED, description="the caller cancelled"
                )
                return True
            case HungUp():
                await core.remote_hangup(peer_call_id, description="the SIP peer hung up")
                return True
            case Ended():
                return True
            case AckTimeout():
                await core.remote_hangup(
                    peer_call_id, code=ErrorCode.REQUEST_TIMEOUT, description="the SIP peer never sent ACK"
                )
                return True
            case DialogRequest(request=request) if request.method == "INFO":
                key = parse_info_dtmf(request.content_type or "", request.body)
                if key is not None:
                    core.remote_dtmf(peer_call_id, key.digit, key.duration_ms)
        return False

    def _hold(self, peer_call_id: str, request: Request) -> bytes | None:
        leg = self._legs.get(peer_call_id)
        if leg is None or not leg.local_sdp or request.content_type != "application/sdp":
            return None
        leg.local_sdp = hold_answer(leg.local_sdp, request.body)
        return leg.local_sdp

    def _incoming(self, call: Call) -> tuple[_Leg, IncomingCall]:
        leg = self._legs.get(call.peer_call_id or "")
        if leg is None or not isinstance(leg.sip, IncomingCall):
            raise ChannelError(f"call {call.id}: no SIP call {call.peer_call_id}")
        return leg, leg.sip

    def _spawn(self, work: Awaitable[object]) -> None:
        if self._tasks is None:
            raise ChannelError("the SIP channel is not running")

        async def run() -> None:
            with contextlib.suppress(SwitchboardError):
                await work

        self._tasks.create_task(run())


def reason_header(status: int, code: str, text: str) -> str:
    """A `Reason` header (RFC 3326) naming why we refused."""
    cleaned = text.replace('"', "'").replace("\r", " ").replace("\n", " ")[:200]
    return f'SIP;cause={status};text="{code}: {cleaned}"' if cleaned else f'SIP;cause={status};text="{code}"'


CUSTOM_HEADER = re.compile(r"[Xx]-[A-Za-z0-9.!%*_+`'~-]+")
"""An `X-` header name that is a SIP token (RFC 3261 §25.1)."""


def custom_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The `X-` headers to send, values kept on one line."""
    return [
        (name, " ".join(value.splitlines()))
        for name, value in headers.items()
        if CUSTOM_HEADER.fullmatch(name)
    ]


def sip_headers(invite: Request) -> dict[str, str]:
    """The INVITE's custom `X-` headers, for routing criteria and applications."""
    return {name: value for name, value in invite.headers if name.lower().startswith("x-")}
