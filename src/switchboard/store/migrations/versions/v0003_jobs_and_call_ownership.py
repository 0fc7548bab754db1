"""durable jobs; calls know their node and whether the far end heard the hang-up

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index("uq_jobs_kind_key", ["kind", "key"], unique=True)
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hangup_delivery", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("hangup_delivery_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("node_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_calls_node_id"), ["node_id"], unique=False)
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hangup_delivery", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("hangup_delivery_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.drop_column("hangup_delivery_error")
        batch_op.drop_column("hangup_delivery")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_node_id"))
        batch_op.drop_column("node_id")
        batch_op.drop_column("hangup_delivery_error")
        batch_op.drop_column("hangup_delivery")
    op.drop_table("jobs")
