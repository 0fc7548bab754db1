"""The WhatsApp channel's signalling: core call actions become Graph API call actions."""

from __future__ import annotations

import logging

from switchboard.channels.whatsapp.graph import DialOutcomeUnknown, GraphClient, NoCallPermissionError
from switchboard.channels.whatsapp.numbers import wa_number
from switchboard.channels.whatsapp.permissions import WhatsAppPermissions
from switchboard.channels.whatsapp.senders import Sender, SenderDirectory
from switchboard.core.errors import ChannelError, SwitchboardError
from switchboard.core.models import Call, EndpointType
from switchboard.core.ports import DialResult
from switchboard.media.engine import WHATSAPP_LEG, LegSpec

log = logging.getLogger(__name__)


class WhatsAppChannel:
    endpoint_type = EndpointType.WHATSAPP
    early_media = False
    """Meta: send media only after `accept` returned 200."""

    def __init__(
        self, graph: GraphClient, senders: SenderDirectory, permissions: WhatsAppPermissions
    ) -> None:
        self._graph = graph
        self._senders = senders
        self._permissions = permissions

    def leg_spec(self, call: Call) -> LegSpec:
        return WHATSAPP_LEG

    async def prepare_outbound(self, call: Call) -> None:
        """A business-initiated call goes out on the sender named by `from` (its id or display number)."""
        sender = await self._senders.find(call.from_)
        if sender is None:
            raise SwitchboardError(f"from: {call.from_!r} is not a WhatsApp sender of this server")
        call.sender_id = sender.phone_number_id
        call.from_ = sender.display_phone_number
        call.to = wa_number(call.to)

    async def _sender(self, call: Call) -> Sender:
        sender = await self._senders.get(call.sender_id or "")
        if sender is None:
            raise ChannelError(f"call {call.id} has no WhatsApp sender configured ({call.sender_id})")
        return sender

    async def _action(self, call: Call, action: str, sdp: str | None = None) -> None:
        if not call.peer_call_id:
            raise ChannelError(f"call {call.id} has no WhatsApp call id")
        await self._graph.call_action(await self._sender(call), call.peer_call_id, action, sdp)

    async def pre_answer(self, call: Call, sdp_answer: str) -> None:
        await self._action(call, "pre_accept", sdp_answer)

    async def answer(self, call: Call, sdp_answer: str) -> None:
        await self._action(call, "accept", sdp_answer)

    async def reject(self, call: Call) -> None:
        await self._action(call, "reject")

    async def hangup(self, call: Call) -> None:
        await self._action(call, "terminate")

    async def dial(self, call: Call, sdp_offer: str) -> DialResult:
        sender = await self._sender(call)
        try:
            peer_call_id = await self._graph.connect(sender, call.to, sdp_offer, callback_data=call.id)
        except NoCallPermissionError:
            await self._permissions.forget(sender.phone_number_id, call.to)
            raise
        except DialOutcomeUnknown as exc:
            # Meta names the call in its webhooks by our call id (biz_opaque_callback_data).
            log.warning("call %s: %s", call.id, exc)
            return DialResult(peer_call_id=None)
        return DialResult(peer_call_id=peer_call_id)
