"""Engines and migrations for the control-plane database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from shipyard.errors import DatabaseError

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "HEAD_REVISION",
    "create_store_engine",
    "current_revision",
    "require_existing",
    "upgrade",
]

HEAD_REVISION = "0014"
_MIGRATIONS = Path(__file__).with_name("migrations")
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long a database server may take to accept a connection before the command says so.
# A URL's own ``?connect_timeout=`` wins.
CONNECT_TIMEOUT_SECONDS = 3
_CONNECT_TIMEOUT_BACKENDS = ("postgresql", "mysql", "mariadb")


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout for many processes.

    Server databases get a connect timeout, so an unreachable one fails in seconds.
    """
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {}
        if backend in _CONNECT_TIMEOUT_BACKENDS and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(
            f"Database URL {url!r} is not usable: {exc}.",
            hint="Use sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/db "
            "(install the postgres extra: pip install 'shipyard-mlops[postgres]').",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def require_existing(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (a mistyped path), instead of creating it.

    Commands that only read or move what exists call this first: an empty new database
    would answer "nothing registered yet" about a project that has plenty.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # create_store_engine says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database or "")
    if path.is_file():
        return
    raise DatabaseError(
        f"No Shipyard database at {path}: the file does not exist.",
        hint="Run `shipyard init` in the project folder to create it, or check the path: "
        "database_url in shipyard.yaml, SHIPYARD_DATABASE_URL, --database-url or --config.",
    )


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
    """Apply control-plane migrations up to ``revision``.

    A database already at the head is recognised with one query, without importing
    Alembic (which every command would otherwise pay for).
    """
    if revision == "head" and _at_head(engine):
        return
    from alembic import command

    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    except OperationalError as exc:
        raise unreachable(engine, exc) from None


def _at_head(engine: Engine) -> bool:
    """Whether the control-plane tables are at :data:`HEAD_REVISION` (one cheap query)."""
    try:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT version_num FROM shipyard_alembic_version"
            ).all()
    except OperationalError as exc:
        if "shipyard_alembic_version" in str(exc.orig):
            return False  # a fresh database: no table yet
        raise unreachable(engine, exc) from None
    except DBAPIError:
        return False  # no such table (PostgreSQL says so as ProgrammingError)
    return [row[0] for row in found] == [_newest_script()]


def _newest_script() -> str:
    """The revision of the newest migration script (scripts are named ``NNNN_what.py``)."""
    names = (path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("*_*.py"))
    return max((name for name in names if name.isdigit()), default=HEAD_REVISION)


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
