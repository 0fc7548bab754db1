"""Persistence: SQLAlchemy tables, the core's repositories, Alembic migrations."""

from switchboard.store.base import Base, Database
from switchboard.store.calls import CallLog, SqlCallRepository
from switchboard.store.channel_records import SqlChannelRecords
from switchboard.store.dialogs import SqlDialogRepository
from switchboard.store.migrations_runner import migrate
from switchboard.store.permissions import SqlPermissionRepository

__all__ = [
    "Base",
    "CallLog",
    "Database",
    "SqlCallRepository",
    "SqlChannelRecords",
    "SqlDialogRepository",
    "SqlPermissionRepository",
    "migrate",
]
