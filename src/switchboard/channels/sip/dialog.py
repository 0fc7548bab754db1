"""SIP dialogs (RFC 3261 §12): identity, CSeq, remote target and route set, in-dialog requests, the 2xx
ACK (§13.2.2.4) and the UAS's retransmission of its 2xx until the ACK comes (§13.3.1.4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from switchboard.channels.sip.message import Address, Request, Response, SipParseError, SipURI
from switchboard.channels.sip.transaction import TimedOut, Timer, TimerValues, Transmit


class DialogError(SipParseError):
    """A request does not fit its dialog (RFC 3261 §12.2.2); `status` is what to answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    remote_uri: Address
    remote_target: SipURI
    local_contact: Address
    route_set: list[Address] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, invite: Request, response: Response) -> Dialog:
        """The dialog a 1xx-with-tag or 2xx to our INVITE creates (§12.1.2)."""
        to = response.to
        if to.tag is None:
            raise DialogError("To: tag missing in a dialog-creating response", 400)
        contacts = response.contacts
        local = invite.from_
        return cls(
            call_id=invite.call_id,
            local_tag=local.tag or "",
            remote_tag=to.tag,
            local_uri=local,
            remote_uri=to,
            remote_target=contacts[0].uri if contacts else invite.uri,
            local_contact=invite.contacts[0] if invite.contacts else local,
            route_set=list(reversed(response.record_routes)),
            local_cseq=invite.cseq.number,
        )

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str, local_contact: Address) -> Dialog:
        """The dialog our 1xx/2xx to an INVITE creates (§12.1.1)."""
        contacts = invite.contacts
        if not contacts:
            raise DialogError("Contact: missing in INVITE", 400)
        remote = invite.from_
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=remote.tag or "",
            local_uri=invite.to.with_tag(local_tag),
            remote_uri=remote,
            remote_target=contacts[0].uri,
            local_contact=local_contact,
            route_set=invite.record_routes,
            remote_cseq=invite.cseq.number,
        )

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
        cseq: int | None = None,
    ) -> Request:
        """A request inside the dialog (§12.2.1.1); the endpoint adds the Via. ACK and CANCEL reuse the
        INVITE's number (`cseq`); every other request takes the next one."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri, routes = self._target_and_routes()
        request = Request(method=method, uri=uri)
        for route in routes:
            request.headers.add("Route", str(route))
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        request.headers.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{cseq} {method}")
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER"):
            request.headers.add("Contact", str(self.local_contact))
        for name, value in headers:
            request.headers.add(name, value)
        if body:
            request.headers.add("Content-Type", content_type)
            request.body = body
        return request

    def create_ack(self, invite_cseq: int, body: bytes = b"") -> Request:
        """The ACK for a 2xx, sent end to end by the UAC (§13.2.2.4)."""
        return self.create_request("ACK", cseq=invite_cseq, body=body)

    def _target_and_routes(self) -> tuple[SipURI, list[Address]]:
        if self.route_set and not self.route_set[0].uri.has_param("lr"):
            # A strict router (§12.2.1.1): it takes the Request-URI, the remote target goes last.
            return self.route_set[0].uri, [*self.route_set[1:], Address(self.remote_target)]
        return self.remote_target, list(self.route_set)

    def receive_request(self, request: Request) -> None:
        """Check a request inside the dialog and take its target refresh (§12.2.2)."""
        cseq = request.cseq.number
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_cseq is not None and cseq <= self.remote_cseq:
                raise DialogError("CSeq: lower than the dialog's", 500)
            self.remote_cseq = cseq
        if request.method in ("INVITE", "UPDATE") and (contacts := request.contacts):
            self.remote_target = contacts[0].uri

    def matches(self, message: Request | Response, *, incoming: bool) -> bool:
        try:
            local, remote = (message.to, message.from_) if incoming else (message.from_, message.to)
            return (
                message.call_id == self.call_id
                and local.tag == self.local_tag
                and (remote.tag or "") == self.remote_tag
            )
        except SipParseError:
            return False


def dialog_id_of(request: Request) -> tuple[str, str, str]:
    """(Call-ID, local tag, remote tag) of a request we received."""
    return (request.call_id, request.to.tag or "", request.from_.tag or "")


class AnswerRetransmission:
    """The UAS's 2xx to an INVITE, sent again at T1, 2·T1, ... capped at T2 until the ACK arrives
    (§13.3.1.4). With no ACK after 64·T1 the call must end: `timeout` returns `TimedOut(Timer.H)`."""

    def __init__(self, response: Response, now: float, *, reliable: bool, timers: TimerValues) -> None:
        self.response = response
        self.reliable = reliable
        self.values = timers
        self.interval = timers.t1
        self.retransmit_at: float | None = None if reliable else now + timers.t1
        self.give_up_at: float | None = now + 64 * timers.t1

    @property
    def done(self) -> bool:
        return self.give_up_at is None

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.retransmit_at, self.give_up_at) if d is not None]
        return min(deadlines, default=None)

    def ack_received(self) -> None:
        self.retransmit_at = self.give_up_at = None

    def timeout(self, now: float) -> list[Transmit | TimedOut]:
        if self.give_up_at is not None and now >= self.give_up_at:
            self.ack_received()
            return [TimedOut(Timer.H)]
        if self.retransmit_at is not None and now >= self.retransmit_at:
            self.interval = min(self.interval * 2, self.values.t2)
            self.retransmit_at = now + self.interval
            return [Transmit(self.response)]
        return []
