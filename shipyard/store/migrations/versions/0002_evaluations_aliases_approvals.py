"""Evaluations, alias moves and approvals.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_evaluations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("golden_digest", sa.String(64), nullable=False),
        sa.Column("champion_version", sa.String(20), nullable=True),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("report_path", sa.Text, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_shipyard_evaluations_model_version", "shipyard_evaluations", ["model", "version"]
    )
    op.create_table(
        "shipyard_alias_moves",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("from_version", sa.String(20), nullable=True),
        sa.Column("to_version", sa.String(20), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_shipyard_alias_moves_model_alias", "shipyard_alias_moves", ["model", "alias", "id"]
    )
    op.create_table(
        "shipyard_approvals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_shipyard_approvals_model_version", "shipyard_approvals", ["model", "version"]
    )


def downgrade() -> None:
    op.drop_table("shipyard_approvals")
    op.drop_table("shipyard_alias_moves")
    op.drop_table("shipyard_evaluations")
