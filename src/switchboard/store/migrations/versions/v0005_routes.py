"""call routing: routes and the recordings made on routed calls

Revision ID: 0005_routes
Revises: 0004_nodes
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_routes"
down_revision: str | Sequence[str] | None = "0004_nodes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_routes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("destinations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_routes")),
    )
    with op.batch_alter_table("routing_routes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_routes_position"), ["position"], unique=True)
    op.create_table(
        "routing_recordings",
        sa.Column("file_id", sa.String(length=128), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=128), nullable=False),
        sa.Column("route_id", sa.String(length=64), nullable=False),
        sa.Column("route_name", sa.String(length=255), nullable=False),
        sa.Column("endpoint_type", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("sip_trunk_id", sa.String(length=128), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("file_format", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("custom_data", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_routing_recordings")),
    )
    with op.batch_alter_table("routing_recordings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_routing_recordings_correlation_id"), ["correlation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_routing_recordings_end_time"), ["end_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_recordings_route_id"), ["route_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("routing_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routing_recordings_route_id"))
        batch_op.drop_index(batch_op.f("ix_routing_recordings_end_time"))
        batch_op.drop_index(batch_op.f("ix_routing_recordings_correlation_id"))
    op.drop_table("routing_recordings")
    with op.batch_alter_table("routing_routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routing_routes_position"))
    op.drop_table("routing_routes")
