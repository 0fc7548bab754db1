"""several nodes on one database: nodes and their heartbeats, outbox leases, jobs for one node; the
webhook ledger is gone (webhook items are jobs)

Revision ID: 0004_nodes
Revises: 0003
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_nodes"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodes_heartbeat_at"), ["heartbeat_at"], unique=False)
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_webhook_outbox_stream", ["subscription_id", "call_id", "id"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("webhook_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_ledger_received_at"))
    op.drop_table("webhook_ledger")


def downgrade() -> None:
    op.create_table(
        "webhook_ledger",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_webhook_ledger")),
    )
    with op.batch_alter_table("webhook_ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_ledger_received_at"), ["received_at"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("node_id")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_outbox_stream")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodes_heartbeat_at"))
    op.drop_table("nodes")
