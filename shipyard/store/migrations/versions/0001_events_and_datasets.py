"""Events and dataset snapshots.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "shipyard_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_index("ix_shipyard_events_kind_at", "shipyard_events", ["kind", "at"])
    op.create_index("ix_shipyard_events_subject_at", "shipyard_events", ["subject", "at"])
    op.create_table(
        "shipyard_datasets",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("columns", sa.Integer, nullable=False),
        sa.Column("stored_uri", sa.Text, nullable=False),
        sa.Column("dvc_md5", sa.String(64), nullable=True),
        sa.Column("dvc_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shipyard_datasets")
    op.drop_index("ix_shipyard_events_subject_at", "shipyard_events")
    op.drop_index("ix_shipyard_events_kind_at", "shipyard_events")
    op.drop_table("shipyard_events")
