"""Compute usage: each serving worker's CPU/GPU seconds and cost per model, version, role.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_usage",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("cpu_seconds", sa.Float, nullable=False),
        sa.Column("gpu_seconds", sa.Float, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
    )
    op.create_index("ix_shipyard_usage_model_at", "shipyard_usage", ["model", "at"])


def downgrade() -> None:
    op.drop_index("ix_shipyard_usage_model_at", "shipyard_usage")
    op.drop_table("shipyard_usage")
