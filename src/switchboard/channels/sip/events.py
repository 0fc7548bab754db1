"""What happens to a SIP call, as the endpoint reports it on the call's `events` queue."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.channels.sip.message import Request, Response


@dataclass(frozen=True, slots=True)
class SipCallEvent:
    """Base of every call event."""


@dataclass(frozen=True, slots=True)
class Progress(SipCallEvent):
    """A provisional response (180 or 183, with or without SDP) to our INVITE."""

    response: Response

    @property
    def sdp(self) -> bytes:
        return self.response.body if self.response.content_type == "application/sdp" else b""


@dataclass(frozen=True, slots=True)
class Answered(SipCallEvent):
    """A 2xx to our INVITE; the endpoint has sent the ACK."""

    response: Response

    @property
    def sdp(self) -> bytes:
        return self.response.body


@dataclass(frozen=True, slots=True)
class Failed(SipCallEvent):
    """Our INVITE ended without a call: a final response of 300-699, or none (`response` is None and
    `status` 408) when the transaction timed out or the peer could not be reached."""

    status: int
    reason: str
    response: Response | None = None


@dataclass(frozen=True, slots=True)
class Cancelled(SipCallEvent):
    """The caller sent CANCEL before we answered; the endpoint answered the INVITE with 487."""

    request: Request


@dataclass(frozen=True, slots=True)
class Confirmed(SipCallEvent):
    """The ACK for our 2xx arrived."""

    ack: Request


@dataclass(frozen=True, slots=True)
class AckTimeout(SipCallEvent):
    """Our 2xx was never ACKed within 64·T1 (RFC 3261 §13.3.1.4): the endpoint sent BYE, the call is over."""


@dataclass(frozen=True, slots=True)
class HungUp(SipCallEvent):
    """The peer sent BYE (the endpoint answered 200): the call is over."""

    request: Request


@dataclass(frozen=True, slots=True)
class DialogRequest(SipCallEvent):
    """A request inside the dialog that the call's owner answers with `SipCall.respond` (re-INVITE,
    UPDATE) or only hears about (INFO, answered 200 by the endpoint)."""

    request: Request


@dataclass(frozen=True, slots=True)
class Ended(SipCallEvent):
    """We ended the call ourselves (sent BYE, or a final 3xx-6xx to the INVITE): nothing more will come."""

    how: str
