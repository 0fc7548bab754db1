"""WhatsApp senders: `SqlSenderDirectory` implements the core's `SenderDirectory`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select

from switchboard.core.models import InboundAction, InboundConfiguration, Sender
from switchboard.store.base import Database, insert_on_conflict
from switchboard.store.tables import SenderRow
from switchboard.store.views import CachedView


def digits(number: str) -> str:
    """`number` reduced to its digits: `+1 (555) 010-0000` -> `15550100000`."""
    return "".join(ch for ch in number if ch.isdigit())


def _from_row(row: SenderRow) -> Sender:
    return Sender(
        phone_number_id=row.phone_number_id,
        display_phone_number=row.display_phone_number,
        waba_id=row.waba_id,
        access_token=row.access_token,
        app_secret=row.app_secret,
        verify_token=row.verify_token,
        graph_api_url=row.graph_api_url,
        inbound=InboundConfiguration(
            action=InboundAction(row.inbound_action),
            calls_configuration_id=row.inbound_calls_configuration_id,
            scenario_id=row.inbound_scenario_id,
            flow_id=row.inbound_flow_id,
            route_id=row.inbound_route_id,
        ),
    )


class SqlSenderDirectory:
    """Senders from the table, read through a small in-memory view.

    Every webhook and call action looks a sender up, and a business has few numbers: the table is read
    whole and kept until a sender changes through this object or the view is `max_age_s` old (so a
    change made through another node takes effect within that time).
    """

    def __init__(self, db: Database, *, max_age_s: float = 5.0) -> None:
        self._db = db
        self._view = CachedView(self._load, max_age_s=max_age_s)

    async def _load(self) -> list[Sender]:
        async with self._db.session() as session:
            rows = (await session.scalars(select(SenderRow).order_by(SenderRow.created_at))).all()
            return [_from_row(row) for row in rows]

    async def _current(self) -> list[Sender]:
        return await self._view.items()

    async def get(self, phone_number_id: str) -> Sender | None:
        return next((s for s in await self._current() if s.phone_number_id == phone_number_id), None)

    async def by_display_number(self, number: str) -> Sender | None:
        """The sender whose display number has the digits of `number` (`+`, spaces, dashes ignored)."""
        wanted = digits(number)
        if not wanted:
            return None
        matches = [s for s in await self._current() if digits(s.display_phone_number) == wanted]
        return min(matches, key=lambda s: s.phone_number_id) if matches else None

    async def list(self) -> Sequence[Sender]:
        return list(await self._current())

    async def save(self, sender: Sender) -> None:
        now = datetime.now(UTC)
        values = {
            "phone_number_id": sender.phone_number_id,
            "display_phone_number": sender.display_phone_number,
            "display_digits": digits(sender.display_phone_number),
            "waba_id": sender.waba_id,
            "access_token": sender.access_token,
            "app_secret": sender.app_secret,
            "verify_token": sender.verify_token,
            "graph_api_url": sender.graph_api_url,
            "inbound_action": sender.inbound.action.value,
            "inbound_calls_configuration_id": sender.inbound.calls_configuration_id,
            "inbound_scenario_id": sender.inbound.scenario_id,
            "inbound_flow_id": sender.inbound.flow_id,
            "inbound_route_id": sender.inbound.route_id,
        }
        statement = insert_on_conflict(
            self._db.dialect,
            SenderRow,
            {**values, "created_at": now, "updated_at": now},
            key=["phone_number_id"],
            update=[name for name in values if name != "phone_number_id"] + ["updated_at"],
        )
        async with self._db.session() as session:
            await session.execute(statement)
        self._view.invalidate()

    async def delete(self, phone_number_id: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(SenderRow).where(SenderRow.phone_number_id == phone_number_id)
            )
        self._view.invalidate()
        return bool(getattr(result, "rowcount", 0))
