"""WhatsApp senders: the business numbers this server carries, with their Meta secrets and where their
inbound calls go. They live in the channel (kept as channel records), never in the core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.core.models import InboundAction, InboundTarget
from switchboard.core.ports import ChannelRecords
from switchboard.httpapi.numbers import digits

SENDER_KIND = "whatsapp.sender"

INBOUND_ID_FIELDS: dict[InboundAction, str] = {
    InboundAction.SUBSCRIPTION: "calls_configuration_id",
    InboundAction.CONTACT_CENTER: "queue_id",
    InboundAction.IVR_SCENARIO: "scenario_id",
    InboundAction.FLOW: "flow_id",
    InboundAction.CALL_ROUTING: "route_id",
}
"""The configuration key naming each action's target (API: the camelCase form)."""
REQUIRED_IDS = frozenset(
    {InboundAction.SUBSCRIPTION, InboundAction.CONTACT_CENTER, InboundAction.IVR_SCENARIO, InboundAction.FLOW}
)
"""Actions whose target id is required (CALL_ROUTING without a route tries every route in order)."""


@dataclass(frozen=True, slots=True)
class Sender:
    """A WhatsApp business number connected to the platform."""

    phone_number_id: str
    display_phone_number: str
    waba_id: str
    access_token: str
    app_secret: str
    verify_token: str
    graph_api_url: str
    inbound: InboundTarget


def _to_data(sender: Sender) -> dict[str, Any]:
    return {
        "phone_number_id": sender.phone_number_id,
        "display_phone_number": sender.display_phone_number,
        "waba_id": sender.waba_id,
        "access_token": sender.access_token,
        "app_secret": sender.app_secret,
        "verify_token": sender.verify_token,
        "graph_api_url": sender.graph_api_url,
        "inbound": {"action": sender.inbound.action.value, "id": sender.inbound.id},
    }


def _from_data(data: Mapping[str, Any]) -> Sender:
    inbound = data["inbound"]
    return Sender(
        phone_number_id=data["phone_number_id"],
        display_phone_number=data["display_phone_number"],
        waba_id=data["waba_id"],
        access_token=data["access_token"],
        app_secret=data["app_secret"],
        verify_token=data["verify_token"],
        graph_api_url=data["graph_api_url"],
        inbound=InboundTarget(InboundAction(inbound["action"]), inbound.get("id")),
    )


class SenderDirectory:
    def __init__(self, records: ChannelRecords) -> None:
        self._records = records

    async def list(self) -> Sequence[Sender]:
        return [_from_data(r.data) for r in await self._records.list(SENDER_KIND)]

    async def get(self, phone_number_id: str) -> Sender | None:
        record = await self._records.get(SENDER_KIND, phone_number_id)
        return _from_data(record.data) if record is not None else None

    async def by_display_number(self, number: str) -> Sender | None:
        """The sender whose display number has the digits of `number` (`+`, spaces, dashes ignored)."""
        wanted = digits(number)
        if not wanted:
            return None
        matches = [s for s in await self.list() if digits(s.display_phone_number) == wanted]
        return min(matches, key=lambda s: s.phone_number_id) if matches else None

    async def find(self, sender: str) -> Sender | None:
        """A sender named by its phone_number_id or its display number."""
        return await self.get(sender) or await self.by_display_number(sender)

    async def save(self, sender: Sender) -> None:
        await self._records.save(SENDER_KIND, sender.phone_number_id, _to_data(sender))

    async def delete(self, phone_number_id: str) -> bool:
        return await self._records.delete(SENDER_KIND, phone_number_id)
