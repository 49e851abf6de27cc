"""Continuous-training cycles: trigger, gates, outcome.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_ct_cycles",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("cause", sa.String(500), nullable=False),
        sa.Column("trigger", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("candidate", sa.String(20), nullable=True),
        sa.Column("champion", sa.String(20), nullable=True),
        sa.Column("rollout_id", sa.Integer, nullable=True),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_shipyard_ct_cycles_model_state", "shipyard_ct_cycles", ["model", "state"])


def downgrade() -> None:
    op.drop_index("ix_shipyard_ct_cycles_model_state", "shipyard_ct_cycles")
    op.drop_table("shipyard_ct_cycles")
