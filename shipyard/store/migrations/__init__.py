"""Alembic migrations of the control-plane tables (version table: shipyard_alembic_version)."""
