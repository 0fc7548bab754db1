"""channel records replace the senders table; calls keep their chain of targets

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENDER_KIND = "whatsapp.sender"
_INBOUND_IDS = {
    "SUBSCRIPTION": "inbound_calls_configuration_id",
    "IVR_SCENARIO": "inbound_scenario_id",
    "FLOW": "inbound_flow_id",
    "CALL_ROUTING": "inbound_route_id",
}


def _as_datetime(value: object) -> datetime | None:
    """A timestamp as read back by a raw query (SQLite returns text)."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


def upgrade() -> None:
    records = op.create_table(
        "channel_records",
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_channel_records")),
    )
    bind = op.get_bind()
    senders = bind.execute(sa.text("SELECT * FROM senders")).mappings().all()
    now = datetime.now(UTC)
    op.bulk_insert(
        records,
        [
            {
                "kind": SENDER_KIND,
                "key": row["phone_number_id"],
                "data": {
                    "phone_number_id": row["phone_number_id"],
                    "display_phone_number": row["display_phone_number"],
                    "waba_id": row["waba_id"],
                    "access_token": row["access_token"],
                    "app_secret": row["app_secret"],
                    "verify_token": row["verify_token"],
                    "graph_api_url": row["graph_api_url"],
                    "inbound": {
                        "action": row["inbound_action"],
                        "id": row[_INBOUND_IDS[row["inbound_action"]]]
                        if row["inbound_action"] in _INBOUND_IDS
                        else None,
                    },
                },
                "created_at": _as_datetime(row["created_at"]) or now,
                "updated_at": now,
            }
            for row in senders
        ],
    )
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_senders_display_digits"))
    op.drop_table("senders")
    for table in ("calls", "call_logs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("targets", sa.JSON(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: senders now live in channel_records")
