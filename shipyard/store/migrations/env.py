"""Alembic environment: runs on the connection Shipyard hands in."""

from __future__ import annotations

from alembic import context

from shipyard.store.tables import Base

VERSION_TABLE = "shipyard_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # MLflow owns `alembic_version` in the same database.
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
