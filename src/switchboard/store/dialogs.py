"""Dialogs (two calls bridged): `SqlDialogRepository` implements the core's `DialogRepository`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from switchboard.core.models import Dialog, DialogState
from switchboard.store.base import Database, upsert
from switchboard.store.codec import error_from_columns
from switchboard.store.tables import DialogRow
from switchboard.store.writes import Step

_ENDED = [DialogState.FINISHED.value, DialogState.FAILED.value]


def _values(dialog: Dialog) -> dict[str, Any]:
    return {
        "id": dialog.id,
        "parent_call_id": dialog.parent_call_id,
        "child_call_id": dialog.child_call_id,
        "state": dialog.state.value,
        "calls_configuration_id": dialog.calls_configuration_id,
        "start_time": dialog.start_time,
        "establish_time": dialog.establish_time,
        "end_time": dialog.end_time,
        "error_code": dialog.error.code.value if dialog.error else None,
        "error_description": dialog.error.description if dialog.error else None,
    }


def _from_row(row: DialogRow) -> Dialog:
    return Dialog(
        id=row.id,
        parent_call_id=row.parent_call_id,
        child_call_id=row.child_call_id,
        state=DialogState(row.state),
        calls_configuration_id=row.calls_configuration_id,
        start_time=row.start_time,
        establish_time=row.establish_time,
        end_time=row.end_time,
        error=error_from_columns(row.error_code, row.error_description),
    )


class SqlDialogRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        updated = [c.name for c in DialogRow.__table__.columns if c.name not in ("id", "created_at")]
        self._upsert = upsert(db.dialect, DialogRow, key=["id"], update=updated)

    async def save(self, dialog: Dialog) -> None:
        now = datetime.now(UTC)
        await self._db.write(Step(self._upsert, {**_values(dialog), "created_at": now, "updated_at": now}))

    async def get(self, dialog_id: str) -> Dialog | None:
        async with self._db.session() as session:
            row = await session.get(DialogRow, dialog_id)
            return _from_row(row) if row else None

    async def list(
        self, *, active: bool | None = None, page: int = 0, size: int = 20
    ) -> tuple[Sequence[Dialog], int]:
        """Dialogs newest first; active = neither FINISHED nor FAILED."""
        where: builtins.list[ColumnElement[bool]] = []
        if active is True:
            where.append(DialogRow.state.not_in(_ENDED))
        elif active is False:
            where.append(DialogRow.state.in_(_ENDED))
        query = (
            select(DialogRow)
            .where(*where)
            .order_by(
                DialogRow.start_time.desc().nulls_last(), DialogRow.created_at.desc(), DialogRow.id.desc()
            )
            .offset(max(page, 0) * size)
            .limit(size)
        )
        count = select(func.count()).select_from(DialogRow).where(*where)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
            total = (await session.execute(count)).scalar_one()
        return [_from_row(row) for row in rows], total
