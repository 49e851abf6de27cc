"""Roll-outs: a candidate's strategy, steps, state and history.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_rollouts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("candidate", sa.String(20), nullable=False),
        sa.Column("champion", sa.String(20), nullable=True),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_seconds", sa.Float, nullable=False),
        sa.Column("min_requests", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_shipyard_rollouts_model_state", "shipyard_rollouts", ["model", "state"])


def downgrade() -> None:
    op.drop_index("ix_shipyard_rollouts_model_state", "shipyard_rollouts")
    op.drop_table("shipyard_rollouts")
