"""Dialogs: two calls bridged. A dialog is established (and an unanswered parent answered) when the child
answers; it ends, and hangs up its other side, when either call ends; `unbridge` separates the calls and
leaves both up. Dialog events travel on the parent call's stream."""

from __future__ import annotations

import logging

from switchboard.core import events as ev
from switchboard.core.errors import DialogNotFound, InvalidCallState, SwitchboardError
from switchboard.core.lifecycle import Lifecycle
from switchboard.core.models import CallState, Dialog, DialogState, Direction, ErrorCode
from switchboard.core.outbound import CallRequest, Outbound
from switchboard.core.services import Services
from switchboard.core.session import CallSession

log = logging.getLogger(__name__)

_OVER = (DialogState.FINISHED, DialogState.FAILED)


class Dialogs:
    def __init__(self, services: Services, lifecycle: Lifecycle, outbound: Outbound) -> None:
        self._s = services
        self._life = lifecycle
        self._outbound = outbound
        lifecycle.on_established.append(self._leg_established)
        lifecycle.on_ended.append(self._leg_ended)

    async def get(self, dialog_id: str) -> Dialog:
        dialog = await self._s.dialogs.get(dialog_id)
        if dialog is None:
            raise DialogNotFound(dialog_id)
        return dialog

    async def connect(self, parent_call_id: str, child: CallRequest | str) -> Dialog:
        """Bridge `parent_call_id` with a new call (`CallRequest`) or an existing call (its id)."""
        s = self._s
        parent = await s.live(parent_call_id)
        if parent.dialog_id is not None:
            raise InvalidCallState(parent_call_id, "IN_DIALOG", "start a second dialog on")
        if isinstance(child, str):
            child_session = await s.live(child)
            if child_session is parent:
                raise InvalidCallState(child, child_session.call.state.value, "bridge a call to itself")
            if child_session.dialog_id is not None:
                raise InvalidCallState(child, "IN_DIALOG", "start a second dialog on")
            s.admission.check_bridge(parent.call.endpoint, child_session.call.endpoint)
        else:
            s.admission.check_bridge(parent.call.endpoint, child.endpoint)
            call = await self._outbound.create_call(child)
            child_session = await s.live(call.id)
        dialog = Dialog(
            id=s.ids(),
            parent_call_id=parent.id,
            child_call_id=child_session.id,
            calls_configuration_id=parent.call.calls_configuration_id,
            start_time=s.clock.now(),
        )
        for session in (child_session, parent):
            async with s.change(session):
                session.dialog_id = session.call.dialog_id = dialog.id
                await s.calls.save(session.call)
                if session is parent:
                    await s.dialogs.save(dialog)
                    s.emit_dialog(parent.call, ev.DialogCreated, dialog)
        ended = next((x for x in (parent, child_session) if x.ended), None)
        if ended is not None:
            # A side ended while the child was being dialled (before it was in the dialog): the dialog
            # fails now and its other side is hung up.
            await self._leg_ended(ended)
            return await self.get(dialog.id)
        if child_session.call.state is CallState.ESTABLISHED:
            await self._leg_established(child_session)
        return dialog

    async def _leg_established(self, session: CallSession) -> None:
        s = self._s
        if session.dialog_id is None:
            return
        dialog = await s.dialogs.get(session.dialog_id)
        if dialog is None or dialog.state is not DialogState.CREATED:
            return
        parent = s.registry.get(dialog.parent_call_id)
        child = s.registry.get(dialog.child_call_id)
        if parent is None or child is None or child.call.state is not CallState.ESTABLISHED:
            return
        async with s.change(parent):
            if parent.ended:
                return
            if parent.call.state is not CallState.ESTABLISHED:
                if parent.call.direction is not Direction.INBOUND:
                    return  # a placed parent is bridged when it answers
                await self._life.answer_locked(parent)
            await s.media.bridge(parent.leg, child.leg)
            dialog.state = DialogState.ESTABLISHED
            dialog.establish_time = s.clock.now()
            await s.dialogs.save(dialog)
            s.emit_dialog(parent.call, ev.DialogEstablished, dialog)

    async def _leg_ended(self, session: CallSession) -> None:
        s = self._s
        if session.dialog_id is None:
            return
        dialog = await s.dialogs.get(session.dialog_id)
        if dialog is None or dialog.state in _OVER:
            return
        established = dialog.state is DialogState.ESTABLISHED
        dialog.state = DialogState.FINISHED if established else DialogState.FAILED
        dialog.end_time = s.clock.now()
        dialog.error = session.call.error
        await s.dialogs.save(dialog)
        other_id = dialog.child_call_id if session.id == dialog.parent_call_id else dialog.parent_call_id
        other = s.registry.get(other_id)
        if other is not None:
            async with s.change(other):
                await self._life.end(other, ErrorCode.NORMAL_HANGUP, "the other side of the dialog ended")
        parent = s.registry.get(dialog.parent_call_id)
        parent_call = parent.call if parent is not None else await s.calls.get(dialog.parent_call_id)
        if parent_call is None:
            return
        s.emit_dialog(parent_call, ev.DialogFinished if established else ev.DialogFailed, dialog)
        await s.publisher.flush(parent_call.id)

    async def unbridge(self, dialog_id: str) -> Dialog:
        """Separate the dialog's calls; both stay up with their applications."""
        s = self._s
        dialog = await self.get(dialog_id)
        if dialog.state in _OVER:
            raise InvalidCallState(dialog.parent_call_id, dialog.state.value, "unbridge the dialog of")
        parent = await s.live(dialog.parent_call_id)
        child = await s.live(dialog.child_call_id)
        async with s.change(parent):
            await s.media.unbridge(parent.leg, child.leg)
            dialog.state = DialogState.FINISHED
            dialog.end_time = s.clock.now()
            await s.dialogs.save(dialog)
            parent.dialog_id = parent.call.dialog_id = None
            await s.calls.save(parent.call)
            s.emit_dialog(parent.call, ev.DialogUnbridged, dialog)
        async with s.change(child):
            child.dialog_id = child.call.dialog_id = None
            await s.calls.save(child.call)
        return dialog

    async def recover(self, ended_call_ids: set[str]) -> None:
        """End the dialogs of calls that `Lifecycle.recover` ended."""
        s = self._s
        if not ended_call_ids:
            return
        page, found = 0, []
        while True:
            dialogs, total = await s.dialogs.list(active=True, page=page, size=100)
            found += [d for d in dialogs if {d.parent_call_id, d.child_call_id} & ended_call_ids]
            page += 1
            if page * 100 >= total or not dialogs:
                break
        for dialog in found:
            established = dialog.state is DialogState.ESTABLISHED
            dialog.state = DialogState.FINISHED if established else DialogState.FAILED
            dialog.end_time = s.clock.now()
            await s.dialogs.save(dialog)
            parent = await s.calls.get(dialog.parent_call_id)
            if parent is not None:
                s.emit_dialog(parent, ev.DialogFinished if established else ev.DialogFailed, dialog)
                await s.publisher.flush(parent.id)

    async def hangup(self, dialog_id: str) -> Dialog:
        dialog = await self.get(dialog_id)
        for call_id in (dialog.child_call_id, dialog.parent_call_id):
            if call_id in self._s.registry:
                try:
                    await self._life.hangup(call_id)
                except SwitchboardError:
                    log.exception("hanging up call %s of dialog %s failed", call_id, dialog_id)
        return await self.get(dialog_id)
