"""Processed webhook deliveries: `SqlWebhookLedger` implements the core's `WebhookLedger`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from switchboard.store.base import Database, upsert
from switchboard.store.tables import WebhookLedgerRow
from switchboard.store.writes import Step


class SqlWebhookLedger:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = upsert(db.dialect, WebhookLedgerRow, key=["key"])

    async def first_time(self, key: str) -> bool:
        """Record `key`; True if it was not recorded before. Atomic: of concurrent callers, one wins."""
        (outcome,) = await self._db.write(Step(self._insert, {"key": key, "received_at": datetime.now(UTC)}))
        return outcome.rowcount == 1

    async def prune(self, older_than: datetime | timedelta) -> int:
        """Forget keys received before `older_than` (a time, or an age from now); returns how many."""
        cutoff = datetime.now(UTC) - older_than if isinstance(older_than, timedelta) else older_than
        async with self._db.session() as session:
            result = await session.execute(
                delete(WebhookLedgerRow).where(WebhookLedgerRow.received_at < cutoff)
            )
        return int(getattr(result, "rowcount", 0))
