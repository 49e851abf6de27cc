"""Traffic settings per model: challenger weights and shadow, beside the generation.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("shipyard_deployments") as batch:
        batch.add_column(sa.Column("traffic", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipyard_deployments") as batch:
        batch.drop_column("traffic")
