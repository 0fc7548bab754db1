"""The core's tables: calls, call logs (CDRs), dialogs, channel records, call permissions, jobs, nodes.

Enums are stored as their string values (no database enum types, so adding a member needs no migration);
structured values (endpoints, custom data, media diagnostics, permission history) are JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.store.base import Base
from switchboard.store.types import UTCDateTime

ID = String(64)
"""Ids: ours are UUIDs; Meta's `wacid.*` ids and applications' own ids are longer: `EXTERNAL_ID`."""
EXTERNAL_ID = String(255)
NUMBER = String(255)
ENUM = String(32)


class CallRow(Base):
    """The live state of one call leg (every field of `core.models.Call`), upserted on each change."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    endpoint: Mapped[dict[str, Any]] = mapped_column(JSON)
    endpoint_type: Mapped[str] = mapped_column(ENUM)
    direction: Mapped[str] = mapped_column(ENUM)
    from_number: Mapped[str] = mapped_column(NUMBER)
    to_number: Mapped[str] = mapped_column(NUMBER)
    state: Mapped[str] = mapped_column(ENUM, index=True)
    calls_configuration_id: Mapped[str | None] = mapped_column(ID, index=True)
    application_id: Mapped[str | None] = mapped_column(ID)
    targets: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    sender_id: Mapped[str | None] = mapped_column(ID)
    peer_call_id: Mapped[str | None] = mapped_column(EXTERNAL_ID, index=True)
    external_id: Mapped[str | None] = mapped_column(EXTERNAL_ID)
    custom_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    parent_call_id: Mapped[str | None] = mapped_column(ID)
    dialog_id: Mapped[str | None] = mapped_column(ID)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ringing_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hangup_source: Mapped[str | None] = mapped_column(ENUM)
    error_code: Mapped[str | None] = mapped_column(ENUM)
    error_description: Mapped[str | None] = mapped_column(Text)
    media: Mapped[dict[str, Any]] = mapped_column(JSON)
    hangup_delivery: Mapped[str | None] = mapped_column(ENUM)
    hangup_delivery_error: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(ID, index=True)
    """The server process that carries the call while it is live."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallLogRow(Base):
    """One CDR per call, written in the transaction that saves the call in a final state; never updated."""

    __tablename__ = "call_logs"
    __table_args__ = (Index("ix_call_logs_end_time", "end_time"),)

    call_id: Mapped[str] = mapped_column(ID, primary_key=True)
    peer_call_id: Mapped[str | None] = mapped_column(EXTERNAL_ID)
    external_id: Mapped[str | None] = mapped_column(EXTERNAL_ID)
    endpoint: Mapped[dict[str, Any]] = mapped_column(JSON)
    endpoint_type: Mapped[str] = mapped_column(ENUM)
    direction: Mapped[str] = mapped_column(ENUM)
    from_number: Mapped[str] = mapped_column(NUMBER)
    to_number: Mapped[str] = mapped_column(NUMBER)
    state: Mapped[str] = mapped_column(ENUM)
    sender_id: Mapped[str | None] = mapped_column(ID, index=True)
    calls_configuration_id: Mapped[str | None] = mapped_column(ID, index=True)
    application_id: Mapped[str | None] = mapped_column(ID)
    targets: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    parent_call_id: Mapped[str | None] = mapped_column(ID)
    dialog_id: Mapped[str | None] = mapped_column(ID)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ringing_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration: Mapped[int] = mapped_column(Integer)
    ring_duration: Mapped[int] = mapped_column(Integer)
    hangup_source: Mapped[str | None] = mapped_column(ENUM)
    error_code: Mapped[str | None] = mapped_column(ENUM)
    error_description: Mapped[str | None] = mapped_column(Text)
    custom_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    media: Mapped[dict[str, Any]] = mapped_column(JSON)
    hangup_delivery: Mapped[str | None] = mapped_column(ENUM)
    hangup_delivery_error: Mapped[str | None] = mapped_column(Text)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DialogRow(Base):
    __tablename__ = "dialogs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    parent_call_id: Mapped[str] = mapped_column(ID, index=True)
    child_call_id: Mapped[str] = mapped_column(ID, index=True)
    state: Mapped[str] = mapped_column(ENUM, index=True)
    calls_configuration_id: Mapped[str | None] = mapped_column(ID)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    establish_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(ENUM)
    error_description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelRecordRow(Base):
    """A channel's own document (a WhatsApp sender with its secrets, a SIP trunk), JSON under (kind, key)."""

    __tablename__ = "channel_records"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(ID, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PermissionRow(Base):
    """A WhatsApp user's call permission toward one sender; history lists are JSON arrays of ISO times."""

    __tablename__ = "call_permissions"

    sender_id: Mapped[str] = mapped_column(ID, primary_key=True)
    wa_id: Mapped[str] = mapped_column(NUMBER, primary_key=True)
    """The WhatsApp user (`PermissionRecord.user`)."""
    status: Mapped[str] = mapped_column(ENUM)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requests: Mapped[list[str]] = mapped_column(JSON)
    connected_calls: Mapped[list[str]] = mapped_column(JSON)
    unanswered_in_a_row: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRow(Base):
    """Work that must get done even across a crash (e.g. telling a far end that its call ended), retried
    with backoff until done or given up."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(EXTERNAL_ID)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(ID)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    node_id: Mapped[str | None] = mapped_column(ID)
    """The node that must run the job (it carries the call the job is about); None: any node."""

    __table_args__ = (Index("uq_jobs_kind_key", "kind", "key", unique=True),)


class NodeRow(Base):
    """A server process sharing the database: where its HTTP API is reached, and when it last said it
    was alive (`heartbeat_at`)."""

    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(ID, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
