"""WhatsApp call permissions: `SqlPermissionRepository` implements the core's `PermissionRepository`."""

from __future__ import annotations

from switchboard.core.models import PermissionStatus
from switchboard.core.ports import PermissionRecord
from switchboard.store.base import Database, upsert
from switchboard.store.codec import times_from_json, times_to_json
from switchboard.store.tables import PermissionRow
from switchboard.store.writes import Step

KEY = ("sender_id", "wa_id")


class SqlPermissionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        updated = [c.name for c in PermissionRow.__table__.columns if c.name not in KEY]
        self._upsert = upsert(db.dialect, PermissionRow, key=KEY, update=updated)

    async def get(self, sender_id: str, user: str) -> PermissionRecord | None:
        async with self._db.session() as session:
            row = await session.get(PermissionRow, (sender_id, user))
            if row is None:
                return None
            return PermissionRecord(
                sender_id=row.sender_id,
                user=row.wa_id,
                status=PermissionStatus(row.status),
                expires_at=row.expires_at,
                requests=times_from_json(row.requests),
                connected_calls=times_from_json(row.connected_calls),
                unanswered_in_a_row=row.unanswered_in_a_row,
                updated_at=row.updated_at,
            )

    async def save(self, record: PermissionRecord) -> None:
        values = {
            "sender_id": record.sender_id,
            "wa_id": record.user,
            "status": record.status.value,
            "expires_at": record.expires_at,
            "requests": times_to_json(record.requests),
            "connected_calls": times_to_json(record.connected_calls),
            "unanswered_in_a_row": record.unanswered_in_a_row,
            "updated_at": record.updated_at,
        }
        await self._db.write(Step(self._upsert, values))
