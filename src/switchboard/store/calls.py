"""Calls and their CDRs: `SqlCallRepository` implements the core's `CallRepository`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select, update

from switchboard.core.models import (
    FINAL_STATES,
    Call,
    CallError,
    CallState,
    Direction,
    Endpoint,
    HangupDelivery,
    HangupSource,
)
from switchboard.store.base import Database, upsert
from switchboard.store.codec import (
    endpoint_from_json,
    endpoint_to_json,
    error_from_columns,
    jsonable,
    targets_from_json,
    targets_to_json,
)
from switchboard.store.tables import CallLogRow, CallRow
from switchboard.store.writes import Step

_FINAL = [state.value for state in FINAL_STATES]
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CallLog:
    """A finished call's record (Infobip's call log / CDR), as written when the call reached a final state."""

    call_id: str
    endpoint: Endpoint
    direction: Direction
    from_: str
    to: str
    state: CallState
    duration: int
    ring_duration: int
    logged_at: datetime
    peer_call_id: str | None = None
    external_id: str | None = None
    sender_id: str | None = None
    calls_configuration_id: str | None = None
    application_id: str | None = None
    parent_call_id: str | None = None
    dialog_id: str | None = None
    start_time: datetime | None = None
    ringing_time: datetime | None = None
    answer_time: datetime | None = None
    end_time: datetime | None = None
    hangup_source: HangupSource | None = None
    error: CallError | None = None
    custom_data: dict[str, str] = field(default_factory=dict)
    media: dict[str, object] = field(default_factory=dict)


def _call_values(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "endpoint": endpoint_to_json(call.endpoint),
        "endpoint_type": call.endpoint.type.value,
        "direction": call.direction.value,
        "from_number": call.from_,
        "to_number": call.to,
        "state": call.state.value,
        "calls_configuration_id": call.calls_configuration_id,
        "application_id": call.application_id,
        "targets": targets_to_json(call.targets),
        "sender_id": call.sender_id,
        "peer_call_id": call.peer_call_id,
        "external_id": call.external_id,
        "custom_data": jsonable(dict(call.custom_data)),
        "parent_call_id": call.parent_call_id,
        "dialog_id": call.dialog_id,
        "start_time": call.start_time,
        "ringing_time": call.ringing_time,
        "answer_time": call.answer_time,
        "end_time": call.end_time,
        "hangup_source": call.hangup_source.value if call.hangup_source else None,
        "error_code": call.error.code.value if call.error else None,
        "error_description": call.error.description if call.error else None,
        "media": jsonable(dict(call.media)),
        "hangup_delivery": call.hangup_delivery.value if call.hangup_delivery else None,
        "hangup_delivery_error": call.hangup_delivery_error,
    }


def _call_from_row(row: Any) -> Call:
    """A `Call` from a `CallRow`, or from any row with the `calls` table's columns as attributes."""
    return Call(
        id=row.id,
        endpoint=endpoint_from_json(row.endpoint),
        direction=Direction(row.direction),
        from_=row.from_number,
        to=row.to_number,
        state=CallState(row.state),
        calls_configuration_id=row.calls_configuration_id,
        application_id=row.application_id,
        targets=targets_from_json(row.targets),
        sender_id=row.sender_id,
        peer_call_id=row.peer_call_id,
        external_id=row.external_id,
        custom_data=dict(row.custom_data or {}),
        parent_call_id=row.parent_call_id,
        dialog_id=row.dialog_id,
        start_time=row.start_time,
        ringing_time=row.ringing_time,
        answer_time=row.answer_time,
        end_time=row.end_time,
        hangup_source=HangupSource(row.hangup_source) if row.hangup_source else None,
        error=error_from_columns(row.error_code, row.error_description),
        media=dict(row.media or {}),
        hangup_delivery=HangupDelivery(row.hangup_delivery) if row.hangup_delivery else None,
        hangup_delivery_error=row.hangup_delivery_error,
    )


def _log_from_row(row: CallLogRow) -> CallLog:
    return CallLog(
        call_id=row.call_id,
        endpoint=endpoint_from_json(row.endpoint),
        direction=Direction(row.direction),
        from_=row.from_number,
        to=row.to_number,
        state=CallState(row.state),
        duration=row.duration,
        ring_duration=row.ring_duration,
        logged_at=row.logged_at,
        peer_call_id=row.peer_call_id,
        external_id=row.external_id,
        sender_id=row.sender_id,
        calls_configuration_id=row.calls_configuration_id,
        application_id=row.application_id,
        parent_call_id=row.parent_call_id,
        dialog_id=row.dialog_id,
        start_time=row.start_time,
        ringing_time=row.ringing_time,
        answer_time=row.answer_time,
        end_time=row.end_time,
        hangup_source=HangupSource(row.hangup_source) if row.hangup_source else None,
        error=error_from_columns(row.error_code, row.error_description),
        custom_data=dict(row.custom_data or {}),
        media=dict(row.media or {}),
    )


class SqlCallRepository:
    """Calls, upserted on every save; a call saved in a final state also gets its CDR row, once.

    Every save stamps the row with `node_id`, the server process that carries the call, so a restarted
    process finds the calls it can no longer carry (`unfinished`)."""

    def __init__(self, db: Database, node_id: str = "") -> None:
        self._db = db
        self._node_id = node_id
        updated = [c.name for c in CallRow.__table__.columns if c.name not in ("id", "created_at")]
        self._upsert = upsert(db.dialect, CallRow, key=["id"], update=updated)
        self._insert_log = upsert(db.dialect, CallLogRow, key=["call_id"])
        self._by_peer = (
            select(CallRow.__table__)
            .where(CallRow.peer_call_id == bindparam("peer_call_id"))
            .order_by(CallRow.created_at.desc())
            .limit(1)
        )

    async def save(self, call: Call) -> None:
        """Upsert the call's row; in a final state, also write its CDR (once), in the same transaction."""
        now = datetime.now(UTC)
        values = _call_values(call)
        row = {**values, "node_id": self._node_id, "created_at": now, "updated_at": now}
        steps = [Step(self._upsert, row)]
        if call.state.is_final:
            log = {name: value for name, value in values.items() if name != "id"}
            log.update(
                call_id=call.id,
                duration=call.duration,
                ring_duration=call.ring_duration,
                logged_at=now,
            )
            steps.append(Step(self._insert_log, log))
        await self._db.write(*steps)

    async def get(self, call_id: str) -> Call | None:
        async with self._db.session() as session:
            row = await session.get(CallRow, call_id)
            return _call_from_row(row) if row else None

    async def unfinished(self) -> Sequence[Call]:
        """Calls of this node that never reached a final state (it stopped while they were live)."""
        query = (
            select(CallRow)
            .where(CallRow.node_id == self._node_id, CallRow.state.not_in(_FINAL))
            .order_by(CallRow.created_at)
        )
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [_call_from_row(row) for row in rows]

    async def adopt(self, node_id: str) -> Sequence[Call]:
        """Carry `node_id`'s unfinished calls from now on (that node stopped): one UPDATE, so of several
        nodes adopting at once each call goes to exactly one (the row lock orders them, and the later
        finds the row no longer `node_id`'s)."""
        statement = (
            update(CallRow)
            .where(CallRow.node_id == node_id, CallRow.state.not_in(_FINAL))
            .values(node_id=self._node_id, updated_at=datetime.now(UTC))
            .returning(*CallRow.__table__.columns)
        )
        async with self._db.session() as session:
            rows = (await session.execute(statement)).all()
        return sorted((_call_from_row(row) for row in rows), key=lambda call: call.start_time or _EPOCH)

    async def set_hangup_delivery(self, call_id: str, delivery: HangupDelivery, error: str | None) -> None:
        """Record whether the far end heard the hang-up, on the call and on its CDR."""
        values = {"hangup_delivery": delivery.value, "hangup_delivery_error": error}
        async with self._db.session() as session:
            await session.execute(update(CallRow).where(CallRow.id == call_id).values(**values))
            await session.execute(update(CallLogRow).where(CallLogRow.call_id == call_id).values(**values))

    async def find_by_peer_call_id(self, peer_call_id: str) -> Call | None:
        rows = await self._db.read(self._by_peer, {"peer_call_id": peer_call_id})
        return _call_from_row(rows[0]) if rows else None

    async def list(
        self,
        *,
        active: bool | None = None,
        calls_configuration_id: str | None = None,
        state: CallState | None = None,
        direction: Direction | None = None,
        page: int = 0,
        size: int = 20,
    ) -> tuple[Sequence[Call], int]:
        """Calls newest first (by start time, then by when first saved), with the total matching."""
        where: builtins.list[ColumnElement[bool]] = []
        if active is True:
            where.append(CallRow.state.not_in(_FINAL))
        elif active is False:
            where.append(CallRow.state.in_(_FINAL))
        if calls_configuration_id is not None:
            where.append(CallRow.calls_configuration_id == calls_configuration_id)
        if state is not None:
            where.append(CallRow.state == state.value)
        if direction is not None:
            where.append(CallRow.direction == direction.value)
        query = (
            select(CallRow)
            .where(*where)
            .order_by(CallRow.start_time.desc().nulls_last(), CallRow.created_at.desc(), CallRow.id.desc())
            .offset(max(page, 0) * size)
            .limit(size)
        )
        count = select(func.count()).select_from(CallRow).where(*where)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
            total = (await session.execute(count)).scalar_one()
        return [_call_from_row(row) for row in rows], total

    async def history(self, *, page: int = 0, size: int = 20) -> tuple[Sequence[CallLog], int]:
        """Finished calls' CDRs, most recently ended first, with the total count."""
        query = (
            select(CallLogRow)
            .order_by(
                CallLogRow.end_time.desc().nulls_last(), CallLogRow.logged_at.desc(), CallLogRow.call_id
            )
            .offset(max(page, 0) * size)
            .limit(size)
        )
        count = select(func.count()).select_from(CallLogRow)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
            total = (await session.execute(count)).scalar_one()
        return [_log_from_row(row) for row in rows], total

    async def get_log(self, call_id: str) -> CallLog | None:
        async with self._db.session() as session:
            row = await session.get(CallLogRow, call_id)
            return _log_from_row(row) if row else None
