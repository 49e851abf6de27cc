"""A/B experiments: arms, split, the metric they decide on, state and decision.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_experiments",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("arms", sa.JSON, nullable=False),
        sa.Column("split", sa.JSON, nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("min_effect", sa.Float, nullable=True),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("power", sa.Float, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("winner", sa.String(20), nullable=True),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_shipyard_experiments_model_state", "shipyard_experiments", ["model", "state"]
    )
    op.create_index(
        "ux_shipyard_experiments_model_name",
        "shipyard_experiments",
        ["model", "name"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_shipyard_experiments_model_name", "shipyard_experiments")
    op.drop_index("ix_shipyard_experiments_model_state", "shipyard_experiments")
    op.drop_table("shipyard_experiments")
