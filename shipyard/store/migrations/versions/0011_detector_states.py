"""Sequential change detectors: each detector's state and how far its feed has read.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "shipyard_detector_states",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("stream", sa.String(300), nullable=False),
        sa.Column("detector", sa.String(40), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("cursor", sa.JSON, nullable=False),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("alarms", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ux_shipyard_detector_states_key",
        "shipyard_detector_states",
        ["model", "version", "stream", "detector"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_shipyard_detector_states_key", "shipyard_detector_states")
    op.drop_table("shipyard_detector_states")
