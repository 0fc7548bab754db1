"""Handing a live call to another application (Infobip's application transfer).

`transfer` asks the destination (`TransferRequested`); until it accepts, the call stays with its current
application, which may go on driving it. `accept` hands the call over (`TransferFinished`); `reject`, the
timeout or the call's end fail the transfer (`TransferFailed`). The call keeps its media leg; its record
keeps the chain of targets it was handed to.
"""

from __future__ import annotations

from switchboard.core import events as ev
from switchboard.core import state as st
from switchboard.core.errors import InvalidCallState, NotFound, PolicyViolation
from switchboard.core.lifecycle import Lifecycle, assign_target
from switchboard.core.models import CallState, InboundTarget
from switchboard.core.services import Services
from switchboard.core.session import CallSession, PendingTransfer
from switchboard.core.timers import TimerKind

LIVE = frozenset({CallState.CALLING, CallState.RINGING, CallState.PRE_ESTABLISHED, CallState.ESTABLISHED})


class TransferNotFound(NotFound):
    def __init__(self, call_id: str, transfer_id: str) -> None:
        super().__init__(f"call {call_id!r} has no pending transfer {transfer_id!r}")


class Transfers:
    def __init__(self, services: Services, lifecycle: Lifecycle) -> None:
        self._s = services
        lifecycle.on_ending.append(self._call_ending)

    async def transfer(
        self,
        call_id: str,
        destination: InboundTarget,
        *,
        timeout_s: float = 30.0,
        custom_data: dict[str, str] | None = None,
    ) -> str:
        """Ask `destination`'s application to take the call; returns the transfer's id."""
        s = self._s
        session = await s.live(call_id)
        refusal = await s.admission.refusal(destination)
        if refusal is not None:
            raise PolicyViolation(f"cannot transfer call {call_id!r} to {destination}: {refusal}")
        async with s.change(session):
            call = session.call
            st.require(call, LIVE, "transfer")
            if session.dialog_id is not None:
                raise InvalidCallState(call_id, "IN_DIALOG", "transfer (unbridge it first)")
            if session.transfer is not None:
                raise InvalidCallState(call_id, "TRANSFERRING", "start a second transfer of")
            if destination == call.target:
                raise InvalidCallState(
                    call_id, call.state.value, f"transfer to its own application {destination}"
                )
            pending = PendingTransfer(s.ids(), call.target, destination, dict(custom_data or {}))
            session.transfer = pending
            session.deadlines.set(TimerKind.TRANSFER, s.clock.monotonic() + timeout_s)
            s.emit(
                call,
                ev.TransferRequested,
                transfer_id=pending.id,
                source=pending.source,
                destination=destination,
                custom_data=pending.custom_data,
            )
            return pending.id

    async def accept(self, call_id: str, transfer_id: str) -> None:
        s = self._s
        session = await s.live(call_id)
        async with s.change(session):
            pending = self._pending(session, transfer_id)
            session.transfer = None
            session.deadlines.cancel(TimerKind.TRANSFER)
            call = session.call
            assign_target(call, pending.destination)
            call.custom_data.update(pending.custom_data)
            await s.calls.save(call)
            s.emit(
                call,
                ev.TransferFinished,
                transfer_id=pending.id,
                source=pending.source,
                destination=pending.destination,
            )

    async def reject(
        self, call_id: str, transfer_id: str, reason: str = "rejected by the application"
    ) -> None:
        session = await self._s.live(call_id)
        async with self._s.change(session):
            self._pending(session, transfer_id)
            self._fail(session, reason)

    def on_timeout(self, session: CallSession) -> None:
        self._fail(session, "the destination did not accept the transfer in time")

    def _call_ending(self, session: CallSession) -> None:
        self._fail(session, "the call ended")

    def _pending(self, session: CallSession, transfer_id: str) -> PendingTransfer:
        pending = session.transfer
        if pending is None or pending.id != transfer_id:
            raise TransferNotFound(session.id, transfer_id)
        return pending

    def _fail(self, session: CallSession, reason: str) -> None:
        pending, session.transfer = session.transfer, None
        session.deadlines.cancel(TimerKind.TRANSFER)
        if pending is None:
            return
        self._s.emit(
            session.call,
            ev.TransferFailed,
            transfer_id=pending.id,
            source=pending.source,
            destination=pending.destination,
            reason=reason,
        )
