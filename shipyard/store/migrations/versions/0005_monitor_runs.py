"""Monitor runs: window, signals and report of each run.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_monitor_runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("window_spec", sa.String(200), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("report_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_shipyard_monitor_runs_model", "shipyard_monitor_runs", ["model", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_shipyard_monitor_runs_model", "shipyard_monitor_runs")
    op.drop_table("shipyard_monitor_runs")
