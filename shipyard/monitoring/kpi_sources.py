"""Where a business KPI's values come from: DuckDB over the team's files, or PostgreSQL.

    values = read_kpi(con, kpi, project_folder)   # a table named kpi_values on con

Without ``source`` the KPI's SQL runs on DuckDB, with the project folder as its
``file_search_path``, so ``read_csv('outcomes.csv')`` means the file beside
``shipyard.yaml`` whatever the working directory. With a PostgreSQL ``source`` the SQL
runs on PostgreSQL itself (in a read-only transaction, through SQLAlchemy and psycopg)
and its rows are loaded into DuckDB: DuckDB's ``postgres`` extension would be
downloaded on first use, which an offline machine cannot do.

Each query is bounded by the KPI's ``timeout_seconds``: PostgreSQL by
``statement_timeout`` (and ``connect_timeout``), DuckDB by interrupting the connection
from a timer. A query that fails raises :class:`KpiQueryError`, whose message names the
KPI and says what to fix; a password in ``source`` never appears in it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from shipyard.config import KpiSettings
from shipyard.logs.reader import sql_literal

__all__ = ["KPI_TABLE", "KpiQueryError", "read_kpi"]

KPI_TABLE = "kpi_values"
"""The table :func:`read_kpi` leaves on the connection: ``request_id`` or ``time`` (one row
each), ``value`` (the mean of the query's values for it) and ``rows`` (how many)."""


class KpiQueryError(Exception):
    """A KPI's query failed; the message names the KPI and what to fix."""


def read_kpi(con: duckdb.DuckDBPyConnection, kpi: KpiSettings, folder: Path) -> int:
    """Run ``kpi``'s query and leave its rows on ``con`` as :data:`KPI_TABLE`; their count.

    The table (see :data:`KPI_TABLE`) replaces the previous KPI's; the count is of the
    query's rows with a key. Raises
    :class:`KpiQueryError`.
    """
    con.execute(f"DROP TABLE IF EXISTS {KPI_TABLE}")
    if kpi.source is None:
        _check_select(kpi)
        # A cursor of its own: an interrupt that lands just after the query finished can
        # only touch this cursor, never the caller's next query on ``con``.
        cursor = con.cursor()
        try:
            cursor.execute(f"SET file_search_path = {sql_literal(str(folder))}")
            with _deadline(cursor, kpi):
                _run(lambda: _from_duckdb(cursor, kpi), kpi, "DuckDB")
        finally:
            cursor.close()
    else:
        raw = _read_postgres(kpi)
        _check_columns(kpi, raw.column_names)
        con.register("kpi_raw", raw)
        try:
            _run(lambda: con.execute(_normalise(kpi)), kpi, "DuckDB")
        finally:
            con.unregister("kpi_raw")
    row = con.execute(f"SELECT sum(rows) FROM {KPI_TABLE}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _from_duckdb(cursor: duckdb.DuckDBPyConnection, kpi: KpiSettings) -> None:
    relation = cursor.sql(kpi.sql)
    if relation is None:
        raise KpiQueryError(_say(kpi, "its sql returns no rows; write one SELECT."))
    _check_columns(kpi, relation.columns)
    relation.create_view("kpi_raw")
    cursor.execute(_normalise(kpi))


def _say(kpi: KpiSettings, problem: str) -> str:
    return f"KPI {kpi.name!r}: {problem}"


def _check_select(kpi: KpiSettings) -> None:
    """A KPI reads: exactly one SELECT (a COPY or an ATTACH has no place in one)."""
    try:
        statements = duckdb.extract_statements(kpi.sql)
    except duckdb.Error as exc:
        raise KpiQueryError(_say(kpi, f"its sql does not parse: {_first_line(exc)}")) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise KpiQueryError(
            _say(kpi, f"its sql holds {len(statements)} statement(s); write exactly one SELECT.")
        )


def _check_columns(kpi: KpiSettings, columns: list[str]) -> None:
    """The query gives the join key and ``value``, or the error says what it gave."""
    found = {column.lower() for column in columns}
    wanted = [kpi.join, "value"]
    missing = [column for column in wanted if column not in found]
    if missing:
        raise KpiQueryError(
            _say(
                kpi,
                f"its sql gives the columns {', '.join(columns) or 'none'}, without "
                f"{' and '.join(missing)}. With join: {kpi.join}, select {kpi.join} and value "
                f"(e.g. SELECT order_id AS {kpi.join}, amount AS value …).",
            )
        )


def _normalise(kpi: KpiSettings) -> str:
    """One row per key: a request's (or a moment's) values averaged, with their count."""
    key = (
        "CAST(request_id AS VARCHAR) AS request_id"
        if kpi.join == "request_id"
        else "CAST(time AS TIMESTAMPTZ) AS time"
    )
    return (
        f"CREATE TABLE {KPI_TABLE} AS SELECT {key}, avg(CAST(value AS DOUBLE)) AS value, "
        f"count(*) AS rows FROM kpi_raw WHERE {kpi.join} IS NOT NULL GROUP BY 1"
    )


def _run(call: Any, kpi: KpiSettings, engine: str) -> Any:
    try:
        return call()
    except duckdb.InterruptException:
        raise KpiQueryError(_timed_out(kpi)) from None
    except duckdb.ConversionException as exc:
        raise KpiQueryError(
            _say(
                kpi,
                f"a value cannot be converted ({_first_line(exc)}); value must be a number and "
                f"{kpi.join} a {'text' if kpi.join == 'request_id' else 'timestamp'}.",
            )
        ) from None
    except duckdb.IOException as exc:
        raise KpiQueryError(
            _say(
                kpi,
                f"a file it reads is missing or unreadable ({_first_line(exc)}); paths are "
                "relative to the project folder (where shipyard.yaml is).",
            )
        ) from None
    except duckdb.Error as exc:
        raise KpiQueryError(
            _say(
                kpi, f"{engine} refused its sql: {_first_line(exc)}. Fix the sql in shipyard.yaml."
            )
        ) from None


def _timed_out(kpi: KpiSettings) -> str:
    return _say(
        kpi,
        f"its query ran longer than {kpi.timeout_seconds:g} s and was stopped; make it "
        "cheaper (filter, aggregate at the source) or raise its timeout_seconds.",
    )


@contextmanager
def _deadline(con: duckdb.DuckDBPyConnection, kpi: KpiSettings) -> Iterator[None]:
    """Interrupt whatever ``con`` runs once the KPI's time is up."""
    timer = threading.Timer(kpi.timeout_seconds, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _read_postgres(kpi: KpiSettings) -> pa.Table:
    """The query's rows from PostgreSQL, in a read-only transaction bounded in time."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    assert kpi.source is not None
    try:
        url = make_url(kpi.source).set(drivername="postgresql+psycopg")
    except Exception:
        raise KpiQueryError(
            _say(kpi, "its source is not a database URL; write postgresql://user@host/db.")
        ) from None
    password = url.password
    milliseconds = max(1, int(kpi.timeout_seconds * 1000))
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "connect_timeout": max(1, math.ceil(kpi.timeout_seconds)),
            "options": f"-c statement_timeout={milliseconds}",
        },
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = conn.exec_driver_sql(kpi.sql)
            if not result.returns_rows:
                raise KpiQueryError(_say(kpi, "its sql returns no rows; write one SELECT."))
            columns = list(result.keys())
            rows = result.fetchall()
    except KpiQueryError:
        raise
    except DBAPIError as exc:
        raise KpiQueryError(_postgres_problem(kpi, exc, url, password)) from None
    except SQLAlchemyError as exc:
        text = _hidden(_first_line(exc), password)
        raise KpiQueryError(_say(kpi, f"PostgreSQL failed: {text}.")) from None
    finally:
        engine.dispose()
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    try:
        return pa.table({name: pa.array(values) for name, values in data.items()})
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise KpiQueryError(
            _say(kpi, f"its rows cannot be read ({exc}); select a number as value.")
        ) from None


def _postgres_problem(kpi: KpiSettings, exc: Any, url: Any, password: str | None) -> str:
    import psycopg

    cause = exc.orig
    where = url.render_as_string(hide_password=True)
    if isinstance(cause, psycopg.errors.QueryCanceled):
        return _timed_out(kpi)
    if isinstance(cause, psycopg.OperationalError) and not isinstance(
        cause, psycopg.errors.QueryCanceled
    ):
        text = _hidden(_first_line(cause), password)
        return _say(
            kpi,
            f"cannot reach PostgreSQL at {where} ({text}); check that the server is up and "
            "that source names the right host, port, database and user.",
        )
    text = _hidden(_first_line(cause), password)
    return _say(kpi, f"PostgreSQL refused its sql: {text}. Fix the sql in shipyard.yaml.")


def _hidden(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
