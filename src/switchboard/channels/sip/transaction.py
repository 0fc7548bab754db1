"""SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state): pure state machines.

Each machine is fed messages (`receive`), its transaction user's responses (`respond`) and the time
(`timeout(now)`), and returns actions for its shell: `Transmit` a message to the peer, `Deliver` one to the
transaction user, `TimedOut` (Timer B, F or H fired), `Terminated`. `next_deadline()` says when to call
`timeout` next. Over a reliable transport nothing is retransmitted (§17.1.1.2, §17.2.1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from switchboard.channels.sip.message import (
    Message,
    Request,
    Response,
)


@dataclass(frozen=True, slots=True)
class TimerValues:
    """RFC 3261 §17.1.1.1 defaults; tests may shrink them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


DEFAULT_TIMERS = TimerValues()


class Timer(enum.Enum):
    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741
    J = "J"
    K = "K"
    L = "L"
    M = "M"


class TransactionState(enum.StrEnum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Transmit:
    message: Message


@dataclass(frozen=True, slots=True)
class Deliver:
    message: Message


@dataclass(frozen=True, slots=True)
class TimedOut:
    timer: Timer


@dataclass(frozen=True, slots=True)
class Terminated:
    pass


Action = Transmit | Deliver | TimedOut | Terminated


class TransactionError(Exception):
    """The transaction user asked for something the state does not allow (our bug, not the peer's)."""


class _Transaction:
    def __init__(self, request: Request, *, reliable: bool, timers: TimerValues = DEFAULT_TIMERS) -> None:
        self.request = request
        self.reliable = reliable
        self.values = timers
        self.state = TransactionState.TRYING
        self.timers: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def next_deadline(self) -> float | None:
        return min(self.timers.values(), default=None)

    def timeout(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for timer, deadline in sorted(self.timers.items(), key=lambda item: item[1]):
            if deadline <= now and self.timers.get(timer) == deadline:
                del self.timers[timer]
                actions += self._fire(timer, now)
        return actions

    def _fire(self, timer: Timer, now: float) -> list[Action]:
        raise NotImplementedError

    def _start(self, timer: Timer, now: float, interval: float) -> None:
        self.timers[timer] = now + interval
        self._intervals[timer] = interval

    def _backoff(self, timer: Timer, now: float, cap: float | None) -> None:
        interval = self._intervals[timer] * 2
        self._start(timer, now, interval if cap is None else min(interval, cap))

    def _terminate(self) -> list[Action]:
        self.state = TransactionState.TERMINATED
        self.timers.clear()
        return [Terminated()]

    def _wait(self, timer: Timer, now: float, interval: float) -> list[Action]:
        """Start `timer`, or end at once when it would be zero (reliable transports)."""
        if interval <= 0:
            return self._terminate()
        self._start(timer, now, interval)
        return []


class ClientInviteTransaction(_Transaction):
    """RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §7.2's Accepted state."""

    def __init__(self, request: Request, *, reliable: bool, timers: TimerValues = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self.state = TransactionState.CALLING
        self.ack: Request | None = None

    def start(self, now: float) -> list[Action]:
        if not self.reliable:
            self._start(Timer.A, now, self.values.t1)
        self._start(Timer.B, now, 64 * self.values.t1)
        return [Transmit(self.request)]

    def receive(self, response: Response, now: float) -> list[Action]:
        state = self.state
        if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
            self.timers.pop(Timer.A, None)
            if response.status < 200:
                self.state = TransactionState.PROCEEDING
                self.timers.pop(Timer.B, None)
                return [Deliver(response)]
            if response.status < 300:
                self.state = TransactionState.ACCEPTED
                self.timers.clear()
                self._start(Timer.M, now, 64 * self.values.t1)
                return [Deliver(response)]
            self.state = TransactionState.COMPLETED
            self.timers.clear()
            self.ack = build_ack_for_failure(self.request, response)
            actions: list[Action] = [Transmit(self.ack), Deliver(response)]
            return actions + self._wait(Timer.D, now, 0 if self.reliable else 32.0)
        if state is TransactionState.ACCEPTED and 200 <= response.status < 300:
            return [Deliver(response)]
        if state is TransactionState.COMPLETED and response.status >= 300 and self.ack is not None:
            return [Transmit(self.ack)]
        return []

    def _fire(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.A and self.state is TransactionState.CALLING:
            self._backoff(Timer.A, now, None)
            return [Transmit(self.request)]
        if timer is Timer.B and self.state is TransactionState.CALLING:
            return [TimedOut(Timer.B), *self._terminate()]
        if timer in (Timer.D, Timer.M):
            return self._terminate()
        return []


class ClientNonInviteTransaction(_Transaction):
    """RFC 3261 §17.1.2 (Figure 6)."""

    def start(self, now: float) -> list[Action]:
        if not self.reliable:
            self._start(Timer.E, now, self.values.t1)
        self._start(Timer.F, now, 64 * self.values.t1)
        return [Transmit(self.request)]

    def receive(self, response: Response, now: float) -> list[Action]:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return []
        if response.status < 200:
            self.state = TransactionState.PROCEEDING
            return [Deliver(response)]
        self.state = TransactionState.COMPLETED
        self.timers.clear()
        return [Deliver(response), *self._wait(Timer.K, now, 0 if self.reliable else self.values.t4)]

    def _fire(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.E and self.state in (TransactionState.TRYING, TransactionState.PROCEEDING):
            if self.state is TransactionState.PROCEEDING:
                self._start(Timer.E, now, self.values.t2)
            else:
                self._backoff(Timer.E, now, self.values.t2)
            return [Transmit(self.request)]
        if timer is Timer.F:
            return [TimedOut(Timer.F), *self._terminate()]
        if timer is Timer.K:
            return self._terminate()
        return []


class ServerInviteTransaction(_Transaction):
    """RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1's Accepted state: a retransmitted INVITE is
    answered with the last response and never reaches the transaction user again."""

    def __init__(self, request: Request, *, reliable: bool, timers: TimerValues = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self.state = TransactionState.PROCEEDING
        self.last_response: Response | None = None

    def start(self, now: float) -> list[Action]:
        return [Deliver(self.request)]

    def receive(self, request: Request, now: float) -> list[Action]:
        state = self.state
        if request.method == "ACK":
            if state is TransactionState.COMPLETED:
                self.state = TransactionState.CONFIRMED
                self.timers.pop(Timer.G, None)
                self.timers.pop(Timer.H, None)
                return self._wait(Timer.I, now, 0 if self.reliable else self.values.t4)
            if state is TransactionState.ACCEPTED:
                return [Deliver(request)]
            return []
        if state in (TransactionState.PROCEEDING, TransactionState.COMPLETED) and self.last_response:
            return [Transmit(self.last_response)]
        return []

    def respond(self, response: Response, now: float) -> list[Action]:
        if self.state is not TransactionState.PROCEEDING:
            raise TransactionError(f"cannot send {response.status} in state {self.state}")
        self.last_response = response
        if response.status < 200:
            return [Transmit(response)]
        if response.status < 300:
            self.state = TransactionState.ACCEPTED
            self._start(Timer.L, now, 64 * self.values.t1)
            return [Transmit(response)]
        self.state = TransactionState.COMPLETED
        if not self.reliable:
            self._start(Timer.G, now, self.values.t1)
        self._start(Timer.H, now, 64 * self.values.t1)
        return [Transmit(response)]

    def _fire(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.G and self.state is TransactionState.COMPLETED and self.last_response:
            self._backoff(Timer.G, now, self.values.t2)
            return [Transmit(self.last_response)]
        if timer is Timer.H and self.state is TransactionState.COMPLETED:
            return [TimedOut(Timer.H), *self._terminate()]
        if timer in (Timer.I, Timer.L):
            return self._terminate()
        return []


class ServerNonInviteTransaction(_Transaction):
    """RFC 3261 §17.2.2 (Figure 8): a retransmitted request (a second BYE) gets the last response."""

    def __init__(self, request: Request, *, reliable: bool, timers: TimerValues = DEFAULT_TIMERS) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self.last_response: Response | None = None

    def start(self, now: float) -> list[Action]:
        return [Deliver(self.request)]

    def receive(self, request: Request, now: float) -> list[Action]:
        if self.state is TransactionState.TRYING or self.last_response is None:
            return []
        if self.state in (TransactionState.PROCEEDING, TransactionState.COMPLETED):
            return [Transmit(self.last_response)]
        return []

    def respond(self, response: Response, now: float) -> list[Action]:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            raise TransactionError(f"cannot send {response.status} in state {self.state}")
        self.last_response = response
        if response.status < 200:
            self.state = TransactionState.PROCEEDING
            return [Transmit(response)]
        self.state = TransactionState.COMPLETED
        return [Transmit(response), *self._wait(Timer.J, now, 0 if self.reliable else 64 * self.values.t1)]

    def _fire(self, timer: Timer, now: float) -> list[Action]:
        return self._terminate() if timer is Timer.J else []


ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction


def build_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via, From,
    Call-ID, CSeq number and Route as the INVITE, To from the response."""
    ack = Request(method="ACK", uri=invite.uri)
    ack.headers.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.lines("Route"):
        ack.headers.add("Route", route)
    ack.headers.add("Max-Forwards", "70")
    ack.headers.add("From", invite.headers.get("From") or "")
    ack.headers.add("To", response.headers.get("To") or "")
    ack.headers.add("Call-ID", invite.call_id)
    ack.headers.add("CSeq", f"{invite.cseq.number} ACK")
    return ack


def server_key(request: Request) -> tuple[str, str, str]:
    """The RFC 3261 §17.2.3 key: branch, sent-by and method (an ACK matches its INVITE)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    return (via.branch or "", via.sent_by.lower(), method)


def client_key(message: Message) -> tuple[str, str]:
    """The RFC 3261 §17.1.3 key: top Via branch and CSeq method."""
    return (message.top_via.branch or "", message.cseq.method)
