"""The audit log (events become Merkle leaves, with a head row) and API tokens.

Existing events are backfilled as leaves in the order they were written, so a project
that upgrades keeps its history, now verifiable.

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shipyard.store.audit_leaf import leaf_data
from shipyard.store.merkle import CompactRange, leaf_hash

revision = "0009"
down_revision = "0008"

_NEW_EVENT_COLUMNS = ("seq", "token_id", "role", "reason", "request_id", "before", "after")


def upgrade() -> None:
    with op.batch_alter_table("shipyard_events") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("token_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("role", sa.String(40), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("request_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("before", sa.String(64), nullable=True))
        batch.add_column(sa.Column("after", sa.String(64), nullable=True))
        batch.add_column(sa.Column("leaf_hash", sa.String(64), nullable=True))
    head = op.create_table(
        "shipyard_audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    tree = _backfill()
    op.bulk_insert(
        head,
        [
            {
                "id": 1,
                "size": tree.size,
                "root": tree.root().hex(),
                "frontier": tree.to_hashes(),
                "updated_at": datetime.now(UTC),
            }
        ],
    )
    with op.batch_alter_table("shipyard_events") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger, nullable=False)
        batch.alter_column("leaf_hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_shipyard_events_seq", ["seq"])
    op.create_table(
        "shipyard_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("grants", sa.JSON, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("replaces", sa.String(40), nullable=True),
    )
    op.create_index("ix_shipyard_tokens_name", "shipyard_tokens", ["name"])


def _backfill() -> CompactRange:
    """Number the existing events 1, 2, 3 … in id order and hash each as a leaf."""
    connection = op.get_bind()
    events = sa.table(
        "shipyard_events",
        sa.column("id"),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor"),
        sa.column("kind"),
        sa.column("subject"),
        sa.column("payload", sa.JSON),
        sa.column("seq"),
        sa.column("leaf_hash"),
    )
    rows = connection.execute(
        sa.select(
            events.c.id,
            events.c.at,
            events.c.actor,
            events.c.kind,
            events.c.subject,
            events.c.payload,
        ).order_by(events.c.id)
    ).all()
    tree = CompactRange()
    for seq, (row_id, at, actor, kind, subject, payload) in enumerate(rows, start=1):
        fields = {
            "seq": seq, "at": at, "actor": actor, "token_id": None, "role": None,
            "kind": kind, "subject": subject, "payload": payload or {}, "reason": "",
            "request_id": None, "before": None, "after": None,
        }  # fmt: skip
        hashed = leaf_hash(leaf_data(fields))
        tree.append(hashed)
        connection.execute(
            events.update().where(events.c.id == row_id).values(seq=seq, leaf_hash=hashed.hex())
        )
    return tree


def downgrade() -> None:
    op.drop_index("ix_shipyard_tokens_name", "shipyard_tokens")
    op.drop_table("shipyard_tokens")
    op.drop_table("shipyard_audit_head")
    with op.batch_alter_table("shipyard_events") as batch:
        batch.drop_constraint("uq_shipyard_events_seq", type_="unique")
        for column in (*_NEW_EVENT_COLUMNS, "leaf_hash"):
            batch.drop_column(column)
