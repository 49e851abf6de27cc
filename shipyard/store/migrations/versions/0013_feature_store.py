"""The feature store: applied feature view versions and materialisation runs.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipyard_feature_views",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("source_schema", sa.JSON, nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.Column("applied_at", _TS, nullable=False),
    )
    op.create_index(
        "ux_shipyard_feature_views_name_version",
        "shipyard_feature_views",
        ["name", "version"],
        unique=True,
    )
    op.create_table(
        "shipyard_materializations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("start_ts", _TS, nullable=True),
        sa.Column("end_ts", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("max_event_ts", _TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_shipyard_materializations_view",
        "shipyard_materializations",
        ["view", "finished_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_shipyard_materializations_view", "shipyard_materializations")
    op.drop_table("shipyard_materializations")
    op.drop_index("ux_shipyard_feature_views_name_version", "shipyard_feature_views")
    op.drop_table("shipyard_feature_views")
