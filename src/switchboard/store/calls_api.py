"""Tables of the Calls API application: configurations, subscriptions, files, recordings, the webhook outbox.

Times are stored as UTC; `utc()` restores the zone SQLite drops. JSON columns hold text serialised once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.store.base import Base


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (SQLite returns naive datetimes)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class CallsConfigurationRow(Base):
    """A calls configuration: the identity of one Calls API application."""

    __tablename__ = "calls_api_configurations"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubscriptionRow(Base):
    """A VOICE_VIDEO subscription: which events of which configurations go to which webhook."""

    __tablename__ = "calls_api_subscriptions"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    events: Mapped[str] = mapped_column(Text)
    """JSON list of event type names."""
    criteria: Mapped[str] = mapped_column(Text)
    """JSON list of criteria objects (`{"callsConfigurationId": ...}`)."""
    profile: Mapped[str] = mapped_column(Text)
    """JSON of the profile (`webhook`, `security`), as given."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallsFileRow(Base):
    """An uploaded audio file (`POST /calls/1/files`)."""

    __tablename__ = "calls_api_files"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    file_format: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    duration: Mapped[int | None] = mapped_column(Integer)
    """Whole seconds, when known."""
    path: Mapped[str] = mapped_column(Text)
    creation_method: Mapped[str] = mapped_column(String(32), default="UPLOADED")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallRecordingRow(Base):
    """One recording file of a call, stored when the core reports `RecordingReady`."""

    __tablename__ = "calls_api_recordings"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    """The recording's file id (the core's recording id)."""
    call_id: Mapped[str] = mapped_column(String(128), index=True)
    calls_configuration_id: Mapped[str | None] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16))
    duration: Mapped[int] = mapped_column(Integer)
    """Whole seconds."""
    size: Mapped[int] = mapped_column(Integer)
    custom_data: Mapped[str] = mapped_column(Text, default="{}")
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookOutboxRow(Base):
    """One event to deliver to one subscription. Written with the event; deleted never, only marked."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        Index("ix_webhook_outbox_pending", "delivered_at", "failed_at", "id"),
        Index("ix_webhook_outbox_stream", "subscription_id", "call_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    """The JSON body, serialised once; delivered byte for byte (signatures cover these bytes)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set when delivery was given up (retries exhausted)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    """The node delivering the row now; others leave it alone until `lease_until`."""
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
