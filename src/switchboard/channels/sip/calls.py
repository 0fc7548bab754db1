"""SIP calls (INVITE dialog usages, RFC 3261 §12-§15) as their owners see them: `IncomingCall` to answer,
`OutgoingCall` to follow, both reporting on their `events` queue. The endpoint carries out what they ask
through the `UserAgent` protocol.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from typing import Protocol

from switchboard.channels.sip.dialog import AnswerRetransmission, Dialog, DialogError
from switchboard.channels.sip.events import Ended, SipCallEvent
from switchboard.channels.sip.message import BRANCH_MAGIC, Address, Request, Response, make_response
from switchboard.channels.sip.transaction import ServerInviteTransaction, TransactionState
from switchboard.channels.sip.transport import DEFAULT_PORTS, Peer, TransportName


def new_tag() -> str:
    return os.urandom(6).hex()


def new_branch() -> str:
    return BRANCH_MAGIC + os.urandom(8).hex()


class UserAgent(Protocol):
    """What a call asks of its endpoint."""

    def contact_for(self, transport: TransportName, user: str | None = None) -> Address: ...

    def remember_call(self, call: SipCall) -> None: ...

    def forget_call(self, call: SipCall) -> None: ...

    def respond_to_invite(self, call: IncomingCall, response: Response) -> None: ...

    def respond_in_dialog(
        self,
        call: SipCall,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        reason: str = "",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None: ...

    def send_cancel(self, call: OutgoingCall) -> None: ...

    async def send_request(self, request: Request, peer: Peer) -> Response | None: ...

    async def reinvite(self, call: SipCall, request: Request, peer: Peer) -> Response | None: ...


class SipCall:
    """One INVITE dialog usage, ours or the peer's. `events` reports what happens to it."""

    def __init__(self, endpoint: UserAgent, peer: Peer) -> None:
        self._endpoint = endpoint
        self.peer = peer
        self.dialog: Dialog | None = None
        self.events: asyncio.Queue[SipCallEvent] = asyncio.Queue()
        self.ended = False
        self.answer_retransmission: AnswerRetransmission | None = None
        self.on_offer: Callable[[Request], bytes | None] | None = None
        """Answers a re-INVITE or UPDATE at once (hold is handled locally): our SDP for a 200, or None
        for 488. Without it the request arrives as a `DialogRequest` for `respond`."""

    @property
    def call_id(self) -> str:
        raise NotImplementedError

    def in_dialog_peer(self) -> Peer:
        """Where requests inside the dialog go: over the same connection on TCP/TLS, else to the first
        route or the remote target (RFC 3261 §12.2.1.1)."""
        if self.peer.reliable or self.dialog is None:
            return self.peer
        hop = self.dialog.route_set[0].uri if self.dialog.route_set else self.dialog.remote_target
        return Peer("udp", hop.host.strip("[]"), hop.port or DEFAULT_PORTS["udp"])

    async def bye(self, headers: Iterable[tuple[str, str]] = ()) -> Response | None:
        """End the confirmed call; None when the peer did not answer the BYE."""
        if self.dialog is None or self.ended:
            return None
        self.ended = True
        self._endpoint.forget_call(self)
        self.events.put_nowait(Ended("BYE"))
        return await self.request("BYE", headers=headers)

    async def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response | None:
        """Send a request inside the dialog (re-INVITE, UPDATE, INFO, OPTIONS, BYE) and await its final
        response. A re-INVITE's 2xx is ACKed here."""
        if self.dialog is None:
            raise DialogError("no dialog yet", 481)
        request = self.dialog.create_request(method, body=body, content_type=content_type, headers=headers)
        peer = self.in_dialog_peer()
        if method == "INVITE":
            return await self._endpoint.reinvite(self, request, peer)
        return await self._endpoint.send_request(request, peer)

    def respond(
        self,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        reason: str = "",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer a `DialogRequest` (a re-INVITE or UPDATE, e.g. hold answered locally)."""
        self._endpoint.respond_in_dialog(self, request, status, body=body, reason=reason, headers=headers)


class IncomingCall(SipCall):
    """A new INVITE we received; answer it with `progress`, `answer` or `reject`."""

    def __init__(
        self, endpoint: UserAgent, invite: Request, peer: Peer, transaction: ServerInviteTransaction
    ) -> None:
        super().__init__(endpoint, peer)
        self.invite = invite
        self.transaction = transaction
        self.local_tag = new_tag()
        self.contact = endpoint.contact_for(peer.transport)

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def sdp(self) -> bytes:
        return self.invite.body if self.invite.content_type == "application/sdp" else b""

    @property
    def pending(self) -> bool:
        """Still waiting for our final response (not answered, rejected or cancelled)."""
        return self.transaction.state is TransactionState.PROCEEDING

    def progress(self, status: int = 180, sdp: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> bool:
        """Send 180/183, with SDP for early media; False when the INVITE is no longer pending."""
        if not 100 < status < 200:
            raise ValueError("progress takes a 1xx status above 100")
        return self._final_or_provisional(status, sdp, "", headers)

    def answer(self, sdp: bytes, headers: Iterable[tuple[str, str]] = ()) -> bool:
        """Send 200 with our SDP; it is retransmitted until the ACK arrives (or the call ends at Timer H)."""
        return self._final_or_provisional(200, sdp, "", headers)

    def reject(self, status: int, reason: str = "", headers: Iterable[tuple[str, str]] = ()) -> bool:
        """Send a final 3xx-6xx (a `Reason` header or a challenge may go in `headers`)."""
        if status < 300:
            raise ValueError("reject takes a status of 300 or more")
        return self._final_or_provisional(status, b"", reason, headers)

    def _final_or_provisional(
        self, status: int, sdp: bytes, reason: str, headers: Iterable[tuple[str, str]]
    ) -> bool:
        if not self.pending:
            return False
        extra = list(headers)
        if status < 300:
            extra.append(("Contact", str(self.contact)))
            if self.dialog is None:
                self.dialog = Dialog.as_uas(self.invite, self.local_tag, self.contact)
                self._endpoint.remember_call(self)
        response = make_response(self.invite, status, reason, to_tag=self.local_tag, headers=extra, body=sdp)
        self._endpoint.respond_to_invite(self, response)
        if status >= 300:
            self.events.put_nowait(Ended(f"{status} {response.reason}"))
        return True


class OutgoingCall(SipCall):
    """An INVITE we sent. `cancel()` before the answer; `bye()` after it."""

    def __init__(self, endpoint: UserAgent, invite: Request, peer: Peer) -> None:
        super().__init__(endpoint, peer)
        self.invite = invite
        self.provisional_received = False
        self.cancel_requested = False
        self.final: Response | None = None
        self.ack: Request | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def cancel(self) -> None:
        """Cancel the INVITE (RFC 3261 §9.1): at once if a provisional came, else when one does. If the
        200 wins the race, the endpoint ACKs it and sends BYE."""
        if self.final is not None or self.cancel_requested:
            return
        self.cancel_requested = True
        if self.provisional_received:
            self._endpoint.send_cancel(self)
