"""A `CallControl` on in-memory fakes and a `ManualClock`, running for the length of one test.

`running_rig()` builds it, runs `control.run()` as a task and cancels that task at the end. The rig's
helpers bring calls into the states tests start from.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.fakes import (
    EventLog,
    FakeApplication,
    FakeAudioStore,
    FakeChannel,
    FakeEngine,
    FakeLeg,
    FakeSynthesizer,
    FakeUrlFetcher,
    InMemoryCallRepository,
    InMemoryDialogRepository,
    InMemoryJobQueue,
    InMemoryPermissionRepository,
    recording_target,
)
from switchboard.core.bus import InProcessEventBus
from switchboard.core.clock import ManualClock
from switchboard.core.content import ContentResolver
from switchboard.core.control import CallControl, CallRequest, InboundCall
from switchboard.core.events import CallEstablished, CallReceived, CallStarted
from switchboard.core.models import (
    Call,
    CallState,
    Endpoint,
    EndpointType,
    InboundAction,
    InboundTarget,
)

CONFIG = InboundTarget(InboundAction.SUBSCRIPTION, "my-app")
"""The Calls API application that calls arrive at."""
OTHER_CONFIG = InboundTarget(InboundAction.SUBSCRIPTION, "other-app")
IVR = InboundTarget(InboundAction.IVR_SCENARIO, "menu")
CALLER = "447700900123"
CALLEE = "447700900456"
BUSINESS = "15550001111"


@dataclass
class Rig:
    control: CallControl
    clock: ManualClock
    bus: InProcessEventBus
    events: EventLog
    calls: InMemoryCallRepository
    dialogs: InMemoryDialogRepository
    permissions: InMemoryPermissionRepository
    engine: FakeEngine
    channel: FakeChannel
    calls_api: FakeApplication
    ivr: FakeApplication
    audio: FakeAudioStore
    urls: FakeUrlFetcher
    speech: FakeSynthesizer
    jobs: InMemoryJobQueue

    def __post_init__(self) -> None:
        self._peers = itertools.count(1)

    def leg(self, call_id: str) -> FakeLeg:
        return self.engine.legs[call_id]

    async def state(self, call_id: str) -> CallState:
        return (await self.control.get_call(call_id)).state

    async def stored(self, call_id: str) -> Call:
        call = await self.calls.get(call_id)
        assert call is not None, f"call {call_id} was never saved"
        return call

    # -- bringing calls into a state ------------------------------------------------------------------

    def inbound_call(
        self,
        *,
        caller: str = CALLER,
        target: InboundTarget | None = CONFIG,
        peer_call_id: str | None = None,
        endpoint_type: EndpointType = EndpointType.WHATSAPP,
    ) -> InboundCall:
        return InboundCall(
            endpoint=Endpoint(endpoint_type, phone_number=caller),
            to=BUSINESS,
            peer_call_id=peer_call_id or f"wacid.in-{next(self._peers)}",
            remote_offer="v=0\r\ns=caller offer\r\n",
            target=target,
            sender_id="sender-1",
        )

    async def inbound(self, *, caller: str = CALLER, target: InboundTarget = CONFIG) -> str:
        """A call arrives and is handed to `target`; returns its id (state CALLING)."""
        call = await self.control.receive_inbound(self.inbound_call(caller=caller, target=target))
        assert call is not None
        await self.events.wait_for(CallReceived, call.id)
        return call.id

    async def established_inbound(self, *, caller: str = CALLER) -> str:
        call_id = await self.inbound(caller=caller)
        await self.control.answer(call_id)
        await self.events.wait_for(CallEstablished, call_id)
        return call_id

    def request(self, *, to: str = CALLEE, **fields: Any) -> CallRequest:
        return CallRequest(
            endpoint=Endpoint(EndpointType.WHATSAPP, phone_number=to),
            from_=BUSINESS,
            calls_configuration_id=CONFIG.id,
            **fields,
        )

    async def outbound(self, *, to: str = CALLEE, **fields: Any) -> str:
        """Place a call (state CALLING, dialled); returns its id."""
        call = await self.control.create_call(self.request(to=to, **fields))
        await self.events.wait_for(CallStarted, call.id)
        return call.id

    async def peer_of(self, call_id: str) -> str:
        peer = (await self.control.get_call(call_id)).peer_call_id
        assert peer is not None, f"call {call_id} has no peer call id"
        return peer

    async def answered_outbound(self, *, to: str = CALLEE, **fields: Any) -> str:
        call_id = await self.outbound(to=to, **fields)
        await self.control.remote_answered(await self.peer_of(call_id), "v=0\r\ns=callee answer\r\n")
        await self.events.wait_for(CallEstablished, call_id)
        return call_id


def build_rig() -> Rig:
    clock = ManualClock()
    bus = InProcessEventBus()
    events = EventLog()
    bus.subscribe(events)
    calls = InMemoryCallRepository()
    dialogs = InMemoryDialogRepository()
    engine = FakeEngine()
    audio = FakeAudioStore()
    urls = FakeUrlFetcher()
    speech = FakeSynthesizer(Path("/tts"))
    ids = itertools.count(1)
    jobs = InMemoryJobQueue()
    control = CallControl(
        calls=calls,
        dialogs=dialogs,
        bus=bus,
        media=engine,
        content=ContentResolver(audio, urls, speech),
        recording_targets=recording_target,
        jobs=jobs,
        clock=clock,
        ids=lambda: f"id-{next(ids)}",
    )
    channel = FakeChannel()
    control.register_channel(channel)
    calls_api = FakeApplication(InboundAction.SUBSCRIPTION)
    ivr = FakeApplication(InboundAction.IVR_SCENARIO)
    control.register_application(calls_api)
    control.register_application(ivr)
    return Rig(
        control=control,
        clock=clock,
        bus=bus,
        events=events,
        calls=calls,
        dialogs=dialogs,
        permissions=InMemoryPermissionRepository(),
        engine=engine,
        channel=channel,
        calls_api=calls_api,
        ivr=ivr,
        audio=audio,
        urls=urls,
        speech=speech,
        jobs=jobs,
    )


@contextlib.asynccontextmanager
async def running(control: CallControl) -> AsyncIterator[None]:
    """Run `control` (every call's executor) for the length of the block."""
    task = asyncio.create_task(control.run(), name="call-control")
    try:
        await control.started()
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_rig() -> AsyncIterator[Rig]:
    rig = build_rig()
    async with running(rig.control):
        yield rig
