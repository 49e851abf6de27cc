"""Engines and migrations for the control-plane database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from shipyard.errors import DatabaseError

__all__ = ["HEAD_REVISION", "create_store_engine", "current_revision", "upgrade"]

HEAD_REVISION = "0009"
_MIGRATIONS = Path(__file__).with_name("migrations")
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout for many processes."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(
            f"Database URL {url!r} is not usable: {exc}.",
            hint="Use sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/db "
            "(install the postgres extra: pip install 'shipyard-mlops[postgres]').",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply control-plane migrations up to ``revision``."""
    from alembic import command

    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    except OperationalError as exc:
        raise unreachable(engine, exc) from None


def current_revision(engine: Engine) -> str | None:
    """The applied control-plane revision, or ``None`` for a fresh database."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("shipyard_alembic_version"):
                return None
            context = MigrationContext.configure(
                connection, opts={"version_table": "shipyard_alembic_version"}
            )
            return context.get_current_revision()
    except OperationalError as exc:
        raise unreachable(engine, exc) from None


def unreachable(engine: Engine, exc: Exception) -> DatabaseError:
    """A DatabaseError naming the database (password hidden) and the driver's reason."""
    safe = engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return DatabaseError(
        f"Cannot use the database {safe}: {reason}",
        hint="Check that the server is running and database_url in shipyard.yaml "
        "(or SHIPYARD_DATABASE_URL) is right.",
    )
