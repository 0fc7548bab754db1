"""Live calls: by id and by the channel's call id, each with its own serial executor; and signals that
arrived before their call (webhooks are unordered)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from switchboard.core.models import ErrorCode
from switchboard.core.session import CallSession, InboxItem, Stop

log = logging.getLogger(__name__)

EARLY_SIGNAL_KEEP_S = 120.0


@dataclass(frozen=True, slots=True)
class RemoteRinging:
    pass


@dataclass(frozen=True, slots=True)
class RemoteAnswered:
    sdp_answer: str


@dataclass(frozen=True, slots=True)
class RemoteHangup:
    code: ErrorCode
    description: str


EarlySignal = RemoteRinging | RemoteAnswered | RemoteHangup
InboxHandler = Callable[[CallSession, InboxItem], Awaitable[None]]


class CallRegistry:
    def __init__(self, handler: InboxHandler) -> None:
        self._handler = handler
        self._sessions: dict[str, CallSession] = {}
        self._by_peer: dict[str, str] = {}
        self._early: dict[str, list[tuple[float, EarlySignal]]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._started = asyncio.Event()

    async def run(self) -> None:
        """Own every call's executor until cancelled (the composition root owns this task)."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            self._started.set()
            try:
                await asyncio.Event().wait()
            finally:
                self._tasks = None
                self._started.clear()
                for session in self._sessions.values():
                    session.inbox.put_nowait(Stop())

    @property
    def running(self) -> bool:
        return self._tasks is not None

    async def started(self) -> None:
        """Return once `run` owns the executors (calls can be taken)."""
        await self._started.wait()

    def add(self, session: CallSession) -> None:
        if self._tasks is None:
            raise RuntimeError("call control is not running")
        self._sessions[session.id] = session
        if session.call.peer_call_id:
            self._by_peer[session.call.peer_call_id] = session.id
        self._tasks.create_task(self._work(session), name=f"call-{session.id}")

    def remove(self, session: CallSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
        peer = session.call.peer_call_id
        if peer and self._by_peer.get(peer) == session.id:
            del self._by_peer[peer]

    def bind_peer(self, session: CallSession, peer_call_id: str) -> None:
        session.call.peer_call_id = peer_call_id
        self._by_peer[peer_call_id] = session.id

    def get(self, call_id: str) -> CallSession | None:
        return self._sessions.get(call_id)

    def by_peer(self, peer_call_id: str) -> CallSession | None:
        call_id = self._by_peer.get(peer_call_id)
        return self._sessions.get(call_id) if call_id else None

    def knows_peer(self, peer_call_id: str) -> bool:
        return peer_call_id in self._by_peer

    def live(self) -> list[CallSession]:
        return list(self._sessions.values())

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._sessions

    # -- signals before their call -------------------------------------------------------------------

    def stash(self, peer_call_id: str, signal: EarlySignal, now: float) -> None:
        for key in [k for k, v in self._early.items() if v and v[0][0] < now - EARLY_SIGNAL_KEEP_S]:
            del self._early[key]
        self._early.setdefault(peer_call_id, []).append((now, signal))

    def take_early(self, peer_call_id: str) -> list[EarlySignal]:
        return [signal for _, signal in self._early.pop(peer_call_id, [])]

    def ended_early(self, peer_call_id: str) -> bool:
        return any(isinstance(s, RemoteHangup) for _, s in self._early.get(peer_call_id, []))

    # -- each call's executor ----------------------------------------------------------------------------

    async def _work(self, session: CallSession) -> None:
        while True:
            item = await session.inbox.get()
            if isinstance(item, Stop):
                return
            try:
                await self._handler(session, item)
            except Exception:
                log.exception("call %s: handling %r failed", session.id, item)
