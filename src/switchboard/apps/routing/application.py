"""`CallRouting`: the Call Routing API (`router`) and the application that routes calls handed to
CALL_ROUTING (a WhatsApp sender's inbound action; with a route id, that route, else every route in order).

The composition root wires it:

    routing = CallRouting(control, SqlRouteRepository(db), SqlRoutingRecordings(db), http=..., urls=...)
    control.register_application(routing)       # takes calls handed to CALL_ROUTING
    bus.subscribe(routing.on_event)             # starts routing on CALL_RECEIVED, follows the calls it places
    task_group.create_task(routing.run())       # owns every call's routing; cancelled on shutdown
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from functools import partial

import httpx
from fastapi import APIRouter

from switchboard.apps.routing.api import build_router
from switchboard.apps.routing.book import RouteBook
from switchboard.apps.routing.ports import RecordingRepository, RouteRepository
from switchboard.apps.routing.session import Deps, RecordedLeg, RoutingSession
from switchboard.core import events as ev
from switchboard.core.control import CallControl
from switchboard.core.models import InboundAction, InboundTarget
from switchboard.httpapi.urls import UrlPolicy
from switchboard.store.routing import RecordingRow

log = logging.getLogger(__name__)


class CallRouting:
    action = InboundAction.CALL_ROUTING
    """The inbound action this application takes (`core.ports.Application`)."""

    def __init__(
        self,
        control: CallControl,
        routes: RouteRepository,
        recordings: RecordingRepository,
        *,
        http: httpx.AsyncClient,
        urls: UrlPolicy,
        time_zone: tzinfo = UTC,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._book = RouteBook(routes)
        self._recordings = recordings
        self._deps = Deps(
            control=control,
            book=self._book,
            http=http,
            now=now or partial(datetime.now, time_zone),
            rng=rng or random.Random(),
            recorded={},
        )
        self._sessions: dict[str, RoutingSession] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self.router: APIRouter = build_router(self._book, recordings, urls)

    async def refusal(self, target: InboundTarget) -> str | None:
        if self._tasks is None:
            return "call routing is not running"
        if target.id and await self._book.get(target.id) is None:
            return f"route {target.id!r} does not exist"
        return None

    async def run(self) -> None:
        """Own every call's routing until cancelled (the composition root owns this task)."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                await asyncio.Event().wait()
        finally:
            self._tasks = None

    async def on_event(self, event: ev.CallEvent) -> None:
        call = event.call
        if isinstance(event, ev.RecordingReady):
            await self._recording_ready(event)
            return
        session = self._sessions.get(call.id) or self._sessions.get(call.parent_call_id or "")
        if session is not None:
            session.deliver(event)
            return
        target = call.target
        if isinstance(event, ev.CallReceived) and target is not None and target.action is self.action:
            self._start(event)

    def _start(self, event: ev.CallReceived) -> None:
        if self._tasks is None:
            log.error("call %s reached call routing while it is not running", event.call.id)
            return
        session = RoutingSession(self._deps, event.call)
        self._sessions[event.call.id] = session
        self._tasks.create_task(self._run(session))

    async def _run(self, session: RoutingSession) -> None:
        try:
            await session.run()
        except Exception:
            log.exception("routing call %s failed", session.call.id)
        finally:
            del self._sessions[session.call.id]

    async def _recording_ready(self, event: ev.RecordingReady) -> None:
        leg: RecordedLeg | None = self._deps.recorded.pop(event.call.id, None)
        if leg is None:
            return
        await self._recordings.add(
            RecordingRow(
                file_id=event.recording_id,
                call_id=event.call.id,
                correlation_id=leg.correlation_id,
                route_id=leg.route_id,
                route_name=leg.route_name,
                endpoint_type=leg.endpoint.type.value,
                address=leg.endpoint.address,
                sip_trunk_id=leg.endpoint.sip_trunk_id,
                path=str(event.path),
                file_format="OGG" if event.path.suffix.lower() in (".ogg", ".opus") else "WAV",
                size=event.size,
                duration=round(event.duration_ms / 1000),
                end_time=event.timestamp,
                start_time=event.call.answer_time,
                custom_data=dict(event.custom_data),
            )
        )
