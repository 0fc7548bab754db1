"""The SIP user agent: transports → transactions → dialogs, as one object owning one TaskGroup.

`SipEndpoint` listens on its `ListenSpec`s, matches each message to its transaction (RFC 3261 §17.1.3,
§17.2.3), carries out the machines' actions and arms one timer per machine at its `next_deadline()`.
New calls arrive on `incoming` as `IncomingCall`s; `invite` places an `OutgoingCall`. Each call reports
on its own `events` queue (`switchboard.channels.sip.events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from switchboard.channels.sip.calls import IncomingCall, OutgoingCall, SipCall, new_branch, new_tag
from switchboard.channels.sip.dialog import AnswerRetransmission, Dialog, DialogError, dialog_id_of
from switchboard.channels.sip.digest import Credentials, digest_flow
from switchboard.channels.sip.events import (
    AckTimeout,
    Answered,
    Cancelled,
    Confirmed,
    DialogRequest,
    Failed,
    HungUp,
    Progress,
)
from switchboard.channels.sip.message import (
    Address,
    Message,
    Request,
    Response,
    SipParseError,
    SipURI,
    Via,
    make_response,
)
from switchboard.channels.sip.registrar import Registration
from switchboard.channels.sip.transaction import (
    DEFAULT_TIMERS,
    Action,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    Terminated,
    TimedOut,
    TimerValues,
    Transmit,
    client_key,
    server_key,
)
from switchboard.channels.sip.transport import (
    DEFAULT_PORTS,
    DEFAULT_STREAM_LIMITS,
    ListenSpec,
    Peer,
    StreamLimits,
    StreamTransport,
    TransportName,
    UdpTransport,
)

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REGISTER"
_EXPIRES = re.compile(r"expires=([0-9]{1,10})", re.IGNORECASE)
_IN_DIALOG = frozenset({"BYE", "INFO", "UPDATE", "NOTIFY", "REFER", "PRACK", "MESSAGE"})


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    listen: tuple[ListenSpec, ...]
    public_address: str | None = None
    """The address Via and Contact advertise instead of the listening one."""
    user_agent: str = "Switchboard"
    timers: TimerValues = DEFAULT_TIMERS
    tls_context: ssl.SSLContext | None = None
    """Server context (certificate and key) for `tls:` listeners."""
    client_tls_context: ssl.SSLContext | None = None
    """Context for TLS connections we open (default: the system's, verifying)."""
    stream_limits: StreamLimits = DEFAULT_STREAM_LIMITS
    """Idle and slow-client limits of TCP/TLS connections."""


@dataclass(frozen=True, slots=True)
class OptionsResult:
    """The outcome of an OPTIONS ping: the final status, or None when nothing answered."""

    status: int | None
    round_trip: float | None

    @property
    def alive(self) -> bool:
        return self.status is not None and self.status < 500


class _Machine(Protocol):
    def next_deadline(self) -> float | None: ...


@dataclass(slots=True)
class _Exchange:
    """A client transaction's link to whoever waits for its outcome."""

    final: asyncio.Future[Response | None]
    on_provisional: Callable[[Response], None] | None = None
    on_2xx_retransmission: Callable[[Response], None] | None = None
    peer: Peer | None = None
    txn: ClientInviteTransaction | ClientNonInviteTransaction | None = None


class SipEndpoint:
    """A SIP user agent (UAC and UAS) on its transports, with an optional registrar."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        registration: Registration | None = None,
    ) -> None:
        self.config = config
        self.registration = registration
        """Answers REGISTER (a registrar); without it REGISTER gets 405."""
        self.incoming: asyncio.Queue[IncomingCall] = asyncio.Queue()
        self._udp: UdpTransport | None = None
        self._streams: dict[TransportName, StreamTransport] = {}
        self._stack = contextlib.AsyncExitStack()
        self._tasks: asyncio.TaskGroup | None = None
        self._server_txns: dict[tuple[str, str, str], tuple[ServerTransaction, Peer]] = {}
        self._client_txns: dict[tuple[str, str], _Exchange] = {}
        self._calls: dict[tuple[str, str, str], SipCall] = {}
        self._invites: dict[tuple[str, str, str], IncomingCall] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._registered_flows: dict[Peer, float] = {}
        """Connections a PBX registered over, until its registration expires (we call it over them)."""

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        for spec in self.config.listen:
            if spec.transport == "udp":
                self._udp = UdpTransport(self._receive)
                await self._udp.start(spec)
            else:
                server_ssl = self.config.tls_context if spec.transport == "tls" else None
                if spec.transport == "tls" and server_ssl is None:
                    raise ValueError(f"{spec}: a TLS listener needs a certificate and key")
                stream = StreamTransport(
                    spec.transport,
                    self._receive,
                    self.spawn,
                    server_ssl=server_ssl,
                    client_ssl=self.config.client_tls_context,
                    on_failure=self._transport_failed,
                    limits=self.config.stream_limits,
                    in_use=self._uses,
                )
                await stream.start(spec)
                self._streams[spec.transport] = stream

    def _uses(self, peer: Peer) -> bool:
        """Whether a call, a transaction or a registration still needs the connection to `peer`."""
        registered_until = self._registered_flows.get(peer)
        if registered_until is not None and registered_until <= self.now:
            del self._registered_flows[peer]
            registered_until = None
        return (
            registered_until is not None
            or any(call.peer == peer for call in self._calls.values())
            or any(exchange.peer == peer for exchange in self._client_txns.values())
            or any(known == peer for _, known in self._server_txns.values())
        )

    def spawn(self, work: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        """Run `work` in the endpoint's TaskGroup; `close` cancels what is still running."""
        assert self._tasks is not None, "the endpoint is not started"
        task = self._tasks.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._udp is not None:
            self._udp.close()
        for stream in self._streams.values():
            await stream.close()
        await self._stack.aclose()

    async def __aenter__(self) -> SipEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def now(self) -> float:
        assert self._loop is not None, "the endpoint is not started"
        return self._loop.time()

    def bound_address(self, transport: TransportName) -> tuple[str, int]:
        """The (host, port) a transport listens on (after binding port 0)."""
        if transport == "udp" and self._udp is not None:
            return self._udp.address
        if transport in self._streams:
            return self._streams[transport].address
        raise ValueError(f"no {transport} listener")

    def _advertised(self, transport: TransportName) -> tuple[str, int]:
        host, port = self.bound_address(transport)
        if self.config.public_address:
            host = self.config.public_address
        elif host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return host, port

    def contact_for(self, transport: TransportName, user: str | None = None) -> Address:
        host, port = self._advertised(transport)
        params = () if transport == "udp" else (("transport", transport),)
        return Address(SipURI(host, user, port, "sip", params))

    def _via(self, transport: TransportName) -> Via:
        host, port = self._advertised(transport)
        return Via(transport.upper(), host, port, (("branch", new_branch()), ("rport", None)))

    # ---- sending -----------------------------------------------------------------------------------

    def _send(self, message: Message, peer: Peer) -> None:
        data = message.to_bytes()
        if peer.transport == "udp":
            if self._udp is None:
                log.warning("no UDP listener to send %s to %s:%s", message, peer.host, peer.port)
                return
            self._udp.send(data, peer)
        elif (stream := self._streams.get(peer.transport)) is not None:
            stream.send(data, peer)
        else:
            log.warning("no %s listener to send %s", peer.transport, message)

    def _stamp(self, request: Request, peer: Peer) -> Request:
        """Add our Via (a new branch) and the headers every request of ours carries."""
        request.headers.prepend("Via", str(self._via(peer.transport)))
        if request.headers.get("Max-Forwards") is None:
            request.headers.add("Max-Forwards", "70")
        if request.headers.get("User-Agent") is None:
            request.headers.add("User-Agent", self.config.user_agent)
        return request

    def _start_client(self, request: Request, peer: Peer, exchange: _Exchange) -> None:
        txn: ClientInviteTransaction | ClientNonInviteTransaction
        if request.method == "INVITE":
            txn = ClientInviteTransaction(request, reliable=peer.reliable, timers=self.config.timers)
        else:
            txn = ClientNonInviteTransaction(request, reliable=peer.reliable, timers=self.config.timers)
        key = client_key(request)
        exchange.peer, exchange.txn = peer, txn
        self._client_txns[key] = exchange
        self._run_client(key, txn, exchange, txn.start(self.now))

    def _run_client(
        self,
        key: tuple[str, str],
        txn: ClientInviteTransaction | ClientNonInviteTransaction,
        exchange: _Exchange,
        actions: list[Action],
    ) -> None:
        assert exchange.peer is not None
        for action in actions:
            match action:
                case Transmit(message):
                    self._send(message, exchange.peer)
                case Deliver(Response() as response):
                    self._client_delivered(exchange, response)
                case TimedOut():
                    if not exchange.final.done():
                        exchange.final.set_result(None)
                case Terminated():
                    if self._client_txns.get(key) is exchange:
                        del self._client_txns[key]
                    if not exchange.final.done():
                        exchange.final.set_result(None)
        self._arm(txn, lambda now: self._run_client(key, txn, exchange, txn.timeout(now)))

    def _client_delivered(self, exchange: _Exchange, response: Response) -> None:
        if response.status < 200:
            if exchange.on_provisional is not None:
                exchange.on_provisional(response)
        elif not exchange.final.done():
            exchange.final.set_result(response)
        elif exchange.on_2xx_retransmission is not None and response.status < 300:
            exchange.on_2xx_retransmission(response)

    async def send_request(
        self, request: Request, peer: Peer, credentials: Credentials | None = None
    ) -> Response | None:
        """Send a non-INVITE request and await its final response (None on timeout); a 401/407 is
        answered once with `credentials`."""
        flow = digest_flow(request, credentials) if credentials else None
        current = next(flow) if flow else request
        while True:
            exchange = _Exchange(asyncio.get_running_loop().create_future())
            self._start_client(self._stamp(current, peer), peer, exchange)
            response = await exchange.final
            if flow is None or response is None or response.status not in (401, 407):
                return response
            try:
                current = flow.send(response)
            except StopIteration:
                return response

    async def options(self, uri: SipURI, peer: Peer) -> OptionsResult:
        """Ping a peer (trunk keep-alive and health check)."""
        request = self.new_request("OPTIONS", uri, Address(uri), self.contact_for(peer.transport))
        started = self.now
        response = await self.send_request(request, peer)
        if response is None:
            return OptionsResult(None, None)
        return OptionsResult(response.status, self.now - started)

    def new_request(self, method: str, uri: SipURI, to: Address, from_: Address) -> Request:
        """An out-of-dialog request (RFC 3261 §8.1.1) with a new Call-ID and From tag."""
        request = Request(method=method, uri=uri)
        request.headers.add("From", str(from_.with_tag(from_.tag or new_tag())))
        request.headers.add("To", str(to))
        request.headers.add("Call-ID", os.urandom(12).hex())
        request.headers.add("CSeq", f"1 {method}")
        return request

    # ---- outgoing calls ----------------------------------------------------------------------------

    def invite(
        self,
        uri: SipURI,
        peer: Peer,
        *,
        from_: Address,
        to: Address | None = None,
        sdp: bytes,
        headers: Iterable[tuple[str, str]] = (),
        credentials: Credentials | None = None,
    ) -> OutgoingCall:
        """Place a call; its progress arrives on the returned call's `events`."""
        request = self.new_request("INVITE", uri, to or Address(uri), from_)
        request.headers.add("Contact", str(self.contact_for(peer.transport)))
        request.headers.add("Allow", ALLOW)
        for name, value in headers:
            request.headers.add(name, value)
        request.headers.add("Content-Type", "application/sdp")
        request.body = sdp
        call = OutgoingCall(self, request, peer)
        self.spawn(self._place(call, credentials))
        return call

    async def _place(self, call: OutgoingCall, credentials: Credentials | None) -> None:
        flow = digest_flow(call.invite, credentials) if credentials else None
        request = next(flow) if flow else call.invite
        while True:
            call.invite = request
            final = await self._invite_once(call, request)
            if flow is None or final is None or final.status not in (401, 407) or call.cancel_requested:
                break
            try:
                request = flow.send(final)
            except StopIteration:
                break
        call.final = final
        if final is None:
            call.ended = True
            call.events.put_nowait(Failed(408, "Request Timeout"))
        elif final.status >= 300:
            call.ended = True
            call.events.put_nowait(Failed(final.status, final.reason, final))

    async def _invite_once(self, call: OutgoingCall, request: Request) -> Response | None:
        exchange = _Exchange(asyncio.get_running_loop().create_future())
        exchange.on_provisional = lambda response: self._invite_progress(call, response)
        exchange.on_2xx_retransmission = lambda response: self._resend_ack(call)
        call.provisional_received = False
        self._start_client(self._stamp(request, call.peer), call.peer, exchange)
        final = await exchange.final
        if final is not None and 200 <= final.status < 300:
            self._invite_answered(call, request, final)
        return final

    def _invite_progress(self, call: OutgoingCall, response: Response) -> None:
        first = not call.provisional_received
        call.provisional_received = True
        if first and call.cancel_requested:
            self.send_cancel(call)
        if response.status > 100:
            call.events.put_nowait(Progress(response))

    def _invite_answered(self, call: OutgoingCall, invite: Request, response: Response) -> None:
        try:
            call.dialog = Dialog.as_uac(invite, response)
        except SipParseError as exc:
            log.info("unusable 2xx to %s: %s", invite, exc)
            return
        call.ack = call.dialog.create_ack(invite.cseq.number)
        self._stamp(call.ack, call.peer)
        self._send(call.ack, call.in_dialog_peer())
        self.remember_call(call)
        if call.cancel_requested:
            # The 200 won the race with our CANCEL (RFC 3261 §9.2 / §15): end the call that started.
            self.spawn(call.bye())
            call.events.put_nowait(Failed(487, "Request Terminated", response))
        else:
            call.events.put_nowait(Answered(response))

    def _resend_ack(self, call: OutgoingCall) -> None:
        if call.ack is not None:
            self._send(call.ack, call.in_dialog_peer())

    def send_cancel(self, call: OutgoingCall) -> None:
        """CANCEL the INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq number and top Via."""
        invite = call.invite
        cancel = Request(method="CANCEL", uri=invite.uri)
        cancel.headers.add("Via", invite.headers.get_all("Via")[0])
        for route in invite.headers.lines("Route"):
            cancel.headers.add("Route", route)
        cancel.headers.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            cancel.headers.add(name, invite.headers.get(name) or "")
        cancel.headers.add("CSeq", f"{invite.cseq.number} CANCEL")
        exchange = _Exchange(asyncio.get_running_loop().create_future())
        self._start_client(cancel, call.peer, exchange)

    async def reinvite(self, call: SipCall, request: Request, peer: Peer) -> Response | None:
        exchange = _Exchange(asyncio.get_running_loop().create_future())
        ack_holder: list[Request] = []

        def resend(_: Response) -> None:
            if ack_holder:
                self._send(ack_holder[0], peer)

        exchange.on_2xx_retransmission = resend
        self._start_client(self._stamp(request, peer), peer, exchange)
        final = await exchange.final
        if final is not None and 200 <= final.status < 300 and call.dialog is not None:
            ack = self._stamp(call.dialog.create_ack(request.cseq.number), peer)
            ack_holder.append(ack)
            self._send(ack, peer)
        return final

    def _transport_failed(self, peer: Peer) -> None:
        """A connection could not be opened: the requests waiting on it fail now (RFC 3261 §8.1.3.1)."""
        for key, exchange in list(self._client_txns.items()):
            if exchange.peer == peer:
                del self._client_txns[key]
                if exchange.txn is not None:
                    self._arm(exchange.txn, lambda now: None)
                if not exchange.final.done():
                    exchange.final.set_result(None)

    # ---- receiving ---------------------------------------------------------------------------------

    def _receive(self, message: Message, peer: Peer) -> None:
        try:
            if isinstance(message, Request):
                self._receive_request(message, peer)
            else:
                self._receive_response(message)
        except SipParseError as exc:
            log.info("bad SIP %s from %s:%s: %s", message, peer.host, peer.port, exc)
            if isinstance(message, Request) and message.method != "ACK":
                self._send_stateless(message, peer, getattr(exc, "status", 400), str(exc)[:100])

    def _send_stateless(self, request: Request, peer: Peer, status: int, reason: str = "") -> None:
        with contextlib.suppress(SipParseError):
            self._send(
                make_response(request, status, reason, to_tag=new_tag()), self._reply_peer(request, peer)
            )

    def _reply_peer(self, request: Request, peer: Peer) -> Peer:
        """Where responses go (RFC 3261 §18.2.2, RFC 3581 §4): the same connection on TCP/TLS, else the
        Via's received/rport (which we stamped from the datagram's source)."""
        if peer.reliable:
            return peer
        via = request.top_via
        return Peer("udp", via.received or via.host, via.rport or via.port or DEFAULT_PORTS["udp"])

    def _stamp_received(self, request: Request, peer: Peer) -> None:
        via = request.top_via
        stamped = via
        if via.host != peer.host:
            stamped = stamped.with_param("received", peer.host)
        if via.wants_rport:
            stamped = stamped.with_param("rport", str(peer.port))
        if stamped is not via:
            lines = request.headers.get_all("Via")
            request.headers.remove("Via")
            request.headers.add("Via", str(stamped))
            for line in lines[1:]:
                request.headers.add("Via", line)

    def _receive_request(self, request: Request, peer: Peer) -> None:
        self._stamp_received(request, peer)
        key = server_key(request)
        if (known := self._server_txns.get(key)) is not None:
            txn, txn_peer = known
            self._run_server(key, txn, txn_peer, txn.receive(request, self.now))
            return
        if request.method == "ACK":
            self._receive_2xx_ack(request)
            return
        reply_peer = self._reply_peer(request, peer)
        server: ServerTransaction
        if request.method == "INVITE":
            server = ServerInviteTransaction(request, reliable=peer.reliable, timers=self.config.timers)
        else:
            server = ServerNonInviteTransaction(request, reliable=peer.reliable, timers=self.config.timers)
        self._server_txns[key] = (server, reply_peer)
        server.start(self.now)
        self._arm(server, lambda now: self._run_server(key, server, reply_peer, server.timeout(now)))
        try:
            self._new_request(request, server, peer)
        except SipParseError as exc:
            status = exc.status if isinstance(exc, DialogError) else 400
            self._respond(server, make_response(request, status, str(exc)[:100], to_tag=new_tag()))

    def _run_server(
        self, key: tuple[str, str, str], txn: ServerTransaction, peer: Peer, actions: list[Action]
    ) -> None:
        for action in actions:
            match action:
                case Transmit(message):
                    self._send(message, peer)
                case Deliver(Request(method="ACK") as ack):
                    self._receive_2xx_ack(ack)
                case TimedOut():
                    log.info("no ACK for our final response to %s", txn.request)
                case Terminated():
                    if self._server_txns.get(key, (None,))[0] is txn:
                        del self._server_txns[key]
                    self._invites.pop(key, None)
        self._arm(txn, lambda now: self._run_server(key, txn, peer, txn.timeout(now)))

    def _respond(self, txn: ServerTransaction, response: Response) -> None:
        key = server_key(txn.request)
        known = self._server_txns.get(key)
        if known is None or known[0] is not txn:
            return
        if response.headers.get("Server") is None:
            response.headers.add("Server", self.config.user_agent)
        self._run_server(key, txn, known[1], txn.respond(response, self.now))

    def _new_request(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        method = request.method
        in_dialog = request.to.tag is not None
        if method == "CANCEL":
            self._receive_cancel(request, txn)
        elif method == "INVITE" and not in_dialog:
            assert isinstance(txn, ServerInviteTransaction)
            self._receive_invite(request, txn, peer)
        elif method == "OPTIONS" and not in_dialog:
            headers = [("Allow", ALLOW), ("Accept", "application/sdp")]
            self._respond(txn, make_response(request, 200, to_tag=new_tag(), headers=headers))
        elif method == "REGISTER":
            self._receive_register(request, txn, peer)
        elif in_dialog and (method in _IN_DIALOG or method in ("INVITE", "OPTIONS")):
            self._receive_in_dialog(request, txn)
        elif method in _IN_DIALOG:
            self._respond(txn, make_response(request, 481, to_tag=new_tag()))
        else:
            self._respond(txn, make_response(request, 405, to_tag=new_tag(), headers=[("Allow", ALLOW)]))

    def _receive_invite(self, request: Request, txn: ServerInviteTransaction, peer: Peer) -> None:
        if not request.contacts:
            raise DialogError("Contact: missing", 400)
        if request.headers.get_all("Require"):
            unsupported = ", ".join(request.headers.get_all("Require"))
            self._respond(txn, make_response(request, 420, headers=[("Unsupported", unsupported)]))
            return
        self._respond(txn, make_response(request, 100))
        call = IncomingCall(self, request, peer, txn)
        self._invites[server_key(request)] = call
        self.incoming.put_nowait(call)

    def respond_to_invite(self, call: IncomingCall, response: Response) -> None:
        self._respond(call.transaction, response)
        if 200 <= response.status < 300:
            self._start_answer_retransmission(call, response, self._reply_peer(call.invite, call.peer))
        elif response.status >= 300:
            call.ended = True
            self.forget_call(call)

    def _start_answer_retransmission(self, call: SipCall, response: Response, peer: Peer) -> None:
        retransmission = AnswerRetransmission(
            response, self.now, reliable=peer.reliable, timers=self.config.timers
        )
        call.answer_retransmission = retransmission

        def fire(now: float) -> None:
            for action in retransmission.timeout(now):
                if isinstance(action, Transmit):
                    self._send(action.message, peer)
                elif not call.ended:
                    call.events.put_nowait(AckTimeout())
                    self.spawn(call.bye())
                else:
                    self.forget_call(call)
            self._arm(retransmission, fire)

        self._arm(retransmission, fire)

    def _receive_2xx_ack(self, ack: Request) -> None:
        call = self._calls.get(dialog_id_of(ack))
        if call is None or call.answer_retransmission is None or call.answer_retransmission.done:
            return
        self._stop_answer_retransmission(call)
        if call.ended:
            self.forget_call(call)
        else:
            call.events.put_nowait(Confirmed(ack))

    def _stop_answer_retransmission(self, call: SipCall) -> None:
        if call.answer_retransmission is not None:
            call.answer_retransmission.ack_received()
            self._arm(call.answer_retransmission, lambda now: None)

    def _receive_cancel(self, cancel: Request, txn: ServerTransaction) -> None:
        branch, sent_by, _ = server_key(cancel)
        call = self._invites.get((branch, sent_by, "INVITE"))
        if call is None:
            self._respond(txn, make_response(cancel, 481, to_tag=new_tag()))
            return
        self._respond(txn, make_response(cancel, 200, to_tag=call.local_tag))
        if call.pending:
            # Otherwise the final response was sent already: it stands (RFC 3261 §9.2).
            self._respond(call.transaction, make_response(call.invite, 487, to_tag=call.local_tag))
            call.ended = True
            self.forget_call(call)
            call.events.put_nowait(Cancelled(cancel))

    def _receive_in_dialog(self, request: Request, txn: ServerTransaction) -> None:
        call = self._calls.get(dialog_id_of(request))
        if call is None or call.dialog is None:
            self._respond(txn, make_response(request, 481))
            return
        call.dialog.receive_request(request)
        if request.method == "BYE":
            self._respond(txn, make_response(request, 200))
            if isinstance(call, IncomingCall) and call.pending:
                self._respond(call.transaction, make_response(call.invite, 487, to_tag=call.local_tag))
            # A BYE that overtakes a lost ACK shows the peer has our 2xx: no need to send it again.
            self._stop_answer_retransmission(call)
            call.ended = True
            self.forget_call(call)
            call.events.put_nowait(HungUp(request))
        elif request.method in ("INFO", "OPTIONS", "NOTIFY"):
            self._respond(txn, make_response(request, 200))
            call.events.put_nowait(DialogRequest(request))
        elif request.method in ("INVITE", "UPDATE") and call.on_offer is not None:
            answer = call.on_offer(request)
            self.respond_in_dialog(call, request, 488 if answer is None else 200, body=answer or b"")
        else:
            call.events.put_nowait(DialogRequest(request))

    def respond_in_dialog(
        self,
        call: SipCall,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        reason: str = "",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        known = self._server_txns.get(server_key(request))
        if known is None or call.dialog is None:
            return
        txn, peer = known
        extra = list(headers)
        if 200 <= status < 300 and request.method in ("INVITE", "UPDATE"):
            extra.append(("Contact", str(call.dialog.local_contact)))
        response = make_response(request, status, reason, headers=extra, body=body)
        self._respond(txn, response)
        if request.method == "INVITE" and 200 <= status < 300:
            self._start_answer_retransmission(call, response, peer)

    def _receive_register(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        if self.registration is None:
            self._respond(txn, make_response(request, 405, to_tag=new_tag(), headers=[("Allow", ALLOW)]))
            return
        self.spawn(self._register(self.registration, request, txn, peer))

    async def _register(
        self, registration: Registration, request: Request, txn: ServerTransaction, peer: Peer
    ) -> None:
        outcome = await registration.register(request, (peer.transport, peer.host, peer.port), self.now)
        response = make_response(request, outcome.status, to_tag=new_tag(), headers=outcome.headers)
        self._respond(txn, response)
        if peer.reliable and outcome.status == 200:
            expires = [int(e) for _, value in outcome.headers for e in _EXPIRES.findall(value)]
            if expires and max(expires) > 0:
                self._registered_flows[peer] = self.now + max(expires)
            else:
                self._registered_flows.pop(peer, None)

    def _receive_response(self, response: Response) -> None:
        key = client_key(response)
        exchange = self._client_txns.get(key)
        if exchange is None or exchange.txn is None:
            return
        self._run_client(key, exchange.txn, exchange, exchange.txn.receive(response, self.now))

    # ---- calls and timers --------------------------------------------------------------------------

    def remember_call(self, call: SipCall) -> None:
        if call.dialog is not None:
            self._calls[call.dialog.id] = call

    def forget_call(self, call: SipCall) -> None:
        # Kept until the 2xx retransmission stops, so a late ACK still finds it.
        retransmitting = call.answer_retransmission is not None and not call.answer_retransmission.done
        if call.dialog is not None and self._calls.get(call.dialog.id) is call and not retransmitting:
            del self._calls[call.dialog.id]

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def _arm(self, machine: _Machine, fire: Callable[[float], None]) -> None:
        if (handle := self._timers.pop(id(machine), None)) is not None:
            handle.cancel()
        deadline = machine.next_deadline()
        if deadline is None or self._loop is None:
            return

        def expired() -> None:
            self._timers.pop(id(machine), None)
            fire(self.now)

        self._timers[id(machine)] = self._loop.call_at(deadline, expired)


__all__ = [
    "EndpointConfig",
    "IncomingCall",
    "OptionsResult",
    "OutgoingCall",
    "SipCall",
    "SipEndpoint",
]
