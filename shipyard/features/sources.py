"""Reading a feature view's source with DuckDB: files, DuckDB SQL, PostgreSQL tables.

:func:`source_relation` makes a view's rows queryable in a DuckDB connection;
:func:`iter_source_batches` streams them in bounded batches (materialisation);
:func:`source_schema` and :func:`check_schema` check the source against the definition
before anything is registered, joined or served.

**Time is UTC.** The event and created columns may be ``TIMESTAMP``, ``TIMESTAMPTZ`` or
ISO text (CSV). :func:`source_relation` and :func:`iter_source_batches` return them cast
to ``TIMESTAMPTZ``; a value without a zone is read as UTC, and every connection made
here (:func:`connect`) has its ``TimeZone`` set to UTC, so comparisons never depend on
the machine's zone.

PostgreSQL tables are read with SQLAlchemy + psycopg (DuckDB's postgres extension
needs a download), through a server-side cursor when streaming.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError, DataError
from shipyard.features.definitions import FeatureView, FileSource, PostgresSource, SqlSource

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from shipyard.features.repo import FeatureRepo

__all__ = [
    "check_schema",
    "connect",
    "iter_source_batches",
    "quote",
    "source_relation",
    "source_schema",
]

_FILE_KINDS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_INTEGER = re.compile(r"^(U?TINYINT|U?SMALLINT|U?INTEGER|U?BIGINT|U?HUGEINT)$")
_NUMERIC = re.compile(r"^(FLOAT|DOUBLE|DECIMAL(\(\d+,\s*\d+\))?)$")
_TIME = re.compile(r"^(TIMESTAMP.*|DATE|VARCHAR)$")
_COMPATIBLE = {
    "int64": lambda t: bool(_INTEGER.match(t)),
    "int32": lambda t: bool(_INTEGER.match(t)),
    "float64": lambda t: bool(_INTEGER.match(t) or _NUMERIC.match(t)),
    "float32": lambda t: bool(_INTEGER.match(t) or _NUMERIC.match(t)),
    "string": lambda t: t in {"VARCHAR", "UUID"} or t.startswith("ENUM"),
    "bool": lambda t: t == "BOOLEAN",
}


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose time zone is UTC."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _time_columns(view: FeatureView) -> list[str]:
    columns = [view.timestamp_field]
    if view.created_timestamp_column:
        columns.append(view.created_timestamp_column)
    return columns


def _file_reader(source: FileSource, root: Path) -> str:
    """The DuckDB table function reading a file source's file or folder."""
    path = Path(source.path)
    path = path if path.is_absolute() else root / path
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _FILE_KINDS)
        if not files:
            raise DataError(
                f"Feature source folder {path} holds no Parquet or CSV files.",
                hint="Put the view's .parquet or .csv files there, or fix source.path.",
            )
    elif path.is_file():
        files = [path]
    else:
        raise DataError(
            f"Feature source {path} does not exist.",
            hint="Fix the view's source path (relative paths are the project's).",
        )
    kinds = {_FILE_KINDS.get(p.suffix.lower()) for p in files}
    if len(kinds) != 1 or None in kinds:
        raise DataError(
            f"Feature source {path} mixes or holds unknown file types "
            f"({', '.join(sorted({p.suffix or '(none)' for p in files}))}).",
            hint="Use .parquet or .csv files, one kind per source.",
        )
    listed = "[" + ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in files) + "]"
    if kinds == {"parquet"}:
        return f"read_parquet({listed}, union_by_name = true)"
    return f"read_csv_auto({listed}, union_by_name = true)"


def _raw_sql(con: duckdb.DuckDBPyConnection, view: FeatureView, root: Path) -> str:
    """A FROM-clause item of the source's rows as stored (file and SQL sources)."""
    if isinstance(view.source, FileSource):
        return _file_reader(view.source, root)
    assert isinstance(view.source, SqlSource)
    # relative paths inside the user's query are the project's, like a file source's
    con.execute(f"SET file_search_path = '{root.as_posix().replace(chr(39), chr(39) * 2)}'")
    return f"({view.source.sql.strip().rstrip(';')})"


def _normalised(view: FeatureView, raw: str, columns: Sequence[str]) -> str:
    """SELECT of ``raw`` with the time columns cast to TIMESTAMPTZ (naive = UTC)."""
    missing = [c for c in _time_columns(view) if c not in columns]
    if missing:
        raise _missing(view, missing[0], columns, "time column")
    casts = ", ".join(f"CAST({quote(c)} AS TIMESTAMPTZ) AS {quote(c)}" for c in _time_columns(view))
    return f"SELECT * REPLACE ({casts}) FROM {raw}"


def _describe(con: duckdb.DuckDBPyConnection, raw: str, view: FeatureView) -> dict[str, str]:
    import duckdb

    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {raw} LIMIT 0").fetchall()
    except duckdb.Error as exc:
        raise DataError(
            f"Cannot read the source of feature view {view.name!r}: {exc}",
            hint="Check the view's source (path, SQL or table) and its data.",
        ) from None
    return {str(row[0]): str(row[1]) for row in rows}


def source_relation(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    root: Path,
    *,
    project_db_url: str | None = None,
) -> str:
    """Make ``view``'s rows queryable in ``con``; returns the quoted name of the relation.

    Its time columns are TIMESTAMPTZ (UTC); everything else is as stored. A PostgreSQL
    table is read whole into Arrow here; use :func:`iter_source_batches` to stream.
    """
    name = quote(f"source_{view.name}")
    if isinstance(view.source, PostgresSource):
        raw_name = quote(f"source_{view.name}_raw")
        table = _pg_read_all(view, project_db_url)
        con.register(raw_name.strip('"').replace('""', '"'), table)
        raw = raw_name
    else:
        raw = _raw_sql(con, view, root)
    columns = list(_describe(con, raw, view))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {_normalised(view, raw, columns)}")
    return name


def iter_source_batches(
    view: FeatureView,
    root: Path,
    *,
    where_sql: str = "",
    params: Sequence[Any] = (),
    batch_rows: int,
    project_db_url: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """The source's rows in batches of at most ``batch_rows``, never the whole source at once.

    ``where_sql`` filters the rows (without ``WHERE``): plain SQL over quoted column names
    with ``?`` placeholders for ``params``, e.g. ``"event_timestamp" > ?`` with a
    timezone-aware datetime; it runs on DuckDB for files and SQL, on PostgreSQL for
    tables. Time columns come out as ``timestamp[us, tz=UTC]``.
    """
    if batch_rows < 1:
        raise ConfigError("batch_rows must be at least 1.")
    if isinstance(view.source, PostgresSource):
        yield from _pg_batches(view, where_sql, params, batch_rows, project_db_url)
        return
    con = connect()
    try:
        name = source_relation(con, view, root)
        query = f"SELECT * FROM {name}" + (f" WHERE {where_sql}" if where_sql else "")
        reader = con.sql(query, params=list(params)).to_arrow_reader(batch_rows)
        yield from reader
    finally:
        con.close()


def source_schema(
    view: FeatureView, root: Path, project_db_url: str | None = None
) -> dict[str, str]:
    """Column → DuckDB type of ``view``'s source as stored (no rows are read)."""
    con = connect()
    try:
        if isinstance(view.source, PostgresSource):
            con.register("pg_empty", _pg_empty(view, project_db_url))
            return _describe(con, "pg_empty", view)
        return _describe(con, _raw_sql(con, view, root), view)
    finally:
        con.close()


def _missing(view: FeatureView, column: str, columns: Sequence[str], role: str) -> DataError:
    return DataError(
        f"The source of feature view {view.name!r} has no column {column!r} ({role}).",
        hint=f"Its columns: {', '.join(columns) or 'none'}. Fix the source or the definition.",
    )


def check_schema(
    view: FeatureView,
    schema: dict[str, str],
    join_keys: FeatureRepo | Sequence[str] | None = None,
) -> None:
    """Raise a DataError naming the column when ``schema`` cannot serve ``view``.

    Checked: the join keys (``join_keys``, or those a repo gives the view), the event
    and created columns (a timestamp, a date or text), and each declared feature
    (present, and of a type its declared dtype can hold: no text where a number is
    declared, no float where an integer is).
    """
    columns = list(schema)
    if join_keys is None:
        keys: Sequence[str] = ()
    elif isinstance(join_keys, str):
        keys = (join_keys,)
    elif hasattr(join_keys, "join_keys"):
        keys = join_keys.join_keys(view)
    else:
        keys = tuple(join_keys)
    for key in keys:
        if key not in schema:
            raise _missing(view, key, columns, "join key")
    for column in _time_columns(view):
        if column not in schema:
            raise _missing(view, column, columns, "time column")
        if not _TIME.match(schema[column]):
            raise DataError(
                f"Column {column!r} of feature view {view.name!r} is {schema[column]}, "
                "not a timestamp.",
                hint="Store event and created times as TIMESTAMP, TIMESTAMPTZ or ISO text.",
            )
    for feature in view.features:
        if feature.name not in schema:
            raise _missing(view, feature.name, columns, f"feature, {feature.dtype}")
        found = schema[feature.name]
        if not _COMPATIBLE[feature.dtype](found):
            raise DataError(
                f"Column {feature.name!r} of feature view {view.name!r} is {found}, "
                f"but the view declares {feature.dtype}.",
                hint=f"Change the declared type of {feature.name!r} or fix the source's column.",
            )


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_url(view: FeatureView, project_db_url: str | None) -> str:
    assert isinstance(view.source, PostgresSource)
    url = view.source.database_url or project_db_url
    if not url or not url.startswith("postgresql"):
        raise ConfigError(
            f"Feature view {view.name!r} reads PostgreSQL table {view.source.table!r}, "
            "but no PostgreSQL URL is known.",
            hint="Set the source's database_url, or use a PostgreSQL database_url for the project.",
        )
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _pg_table(view: FeatureView) -> tuple[str | None, str]:
    assert isinstance(view.source, PostgresSource)
    schema, _, table = view.source.table.rpartition(".")
    return (schema or None), table


def _pg_qualified(view: FeatureView) -> str:
    schema, table = _pg_table(view)
    return (quote(schema) + "." if schema else "") + quote(table)


def _pg_arrow_schema(engine: Any, view: FeatureView) -> pa.Schema:
    """The table's columns as an Arrow schema (types mapped from SQLAlchemy's reflection)."""
    import pyarrow as pa
    from sqlalchemy import inspect, types
    from sqlalchemy.exc import NoSuchTableError

    schema, table = _pg_table(view)
    try:
        reflected = inspect(engine).get_columns(table, schema=schema)
    except NoSuchTableError:
        raise DataError(
            f"PostgreSQL table {view.source.table!r} of feature view {view.name!r} "  # type: ignore[union-attr]
            "does not exist.",
            hint="Create the table or fix the view's source table.",
        ) from None
    fields = []
    for column in reflected:
        kind = column["type"]
        arrow: pa.DataType
        if isinstance(kind, types.Boolean):
            arrow = pa.bool_()
        elif isinstance(kind, types.BigInteger):
            arrow = pa.int64()
        elif isinstance(kind, types.SmallInteger):
            arrow = pa.int16()
        elif isinstance(kind, types.Integer):
            arrow = pa.int32()
        elif isinstance(kind, types.Float) and getattr(kind, "precision", None) in (None, 53):
            arrow = pa.float32() if type(kind).__name__ == "REAL" else pa.float64()
        elif isinstance(kind, types.Numeric):
            arrow = pa.float64()
        elif isinstance(kind, types.DateTime):
            arrow = pa.timestamp("us", "UTC") if kind.timezone else pa.timestamp("us")
        elif isinstance(kind, types.Date):
            arrow = pa.date32()
        else:
            arrow = pa.string()
        fields.append(pa.field(str(column["name"]), arrow))
    return pa.schema(fields)


def _pg_engine(view: FeatureView, project_db_url: str | None) -> Any:
    from sqlalchemy import create_engine

    return create_engine(_pg_url(view, project_db_url), pool_pre_ping=False)


def _pg_empty(view: FeatureView, project_db_url: str | None) -> pa.Table:
    engine = _pg_engine(view, project_db_url)
    try:
        return _pg_arrow_schema(engine, view).empty_table()
    finally:
        engine.dispose()


def _to_batch(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    columns = []
    for i, field in enumerate(schema):
        values = [row[i] for row in rows]
        if pa.types.is_floating(field.type):
            values = [None if v is None else float(v) for v in values]
        elif pa.types.is_string(field.type):
            values = [None if v is None else str(v) for v in values]
        columns.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _utc_times(batch: pa.RecordBatch, view: FeatureView) -> pa.RecordBatch:
    """The time columns as timestamp[us, UTC] (naive = UTC; text parsed as ISO)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = list(batch.columns)
    for column in _time_columns(view):
        i = batch.schema.get_field_index(column)
        if i < 0:
            raise _missing(view, column, batch.schema.names, "time column")
        array = arrays[i]
        if pa.types.is_string(array.type):
            try:
                array = pc.cast(array, pa.timestamp("us", "UTC"))
            except pa.ArrowInvalid:  # ISO text without a zone: UTC
                array = pc.cast(array, pa.timestamp("us"))
        if pa.types.is_date(array.type):
            array = pc.cast(array, pa.timestamp("us"))
        if pa.types.is_timestamp(array.type):
            if array.type.tz is None:
                array = pc.assume_timezone(pc.cast(array, pa.timestamp("us")), "UTC")
            array = pc.cast(array, pa.timestamp("us", "UTC"))
        arrays[i] = array
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _pg_read_all(view: FeatureView, project_db_url: str | None) -> pa.Table:
    import pyarrow as pa

    batches = list(_pg_batches(view, "", (), 50_000, project_db_url))
    if not batches:
        empty = _pg_empty(view, project_db_url)
        batches = [_utc_times(_to_batch([], empty.schema), view)]
    return pa.Table.from_batches(batches)


def _pg_batches(
    view: FeatureView,
    where_sql: str,
    params: Sequence[Any],
    batch_rows: int,
    project_db_url: str | None,
) -> Iterator[pa.RecordBatch]:
    """Stream a PostgreSQL table through a server-side cursor, ``batch_rows`` at a time."""
    from sqlalchemy.exc import SQLAlchemyError

    engine = _pg_engine(view, project_db_url)
    try:
        schema = _pg_arrow_schema(engine, view)
        query = f"SELECT {', '.join(quote(n) for n in schema.names)} FROM {_pg_qualified(view)}"
        if where_sql:
            query += " WHERE " + where_sql.replace("%", "%%").replace("?", "%s")
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            result = conn.execution_options(stream_results=True, yield_per=batch_rows)
            rows = result.exec_driver_sql(query, tuple(params))
            for chunk in rows.partitions(batch_rows):
                yield _utc_times(_to_batch(chunk, schema), view)
    except SQLAlchemyError as exc:
        raise DataError(
            f"Cannot read PostgreSQL table of feature view {view.name!r}: "
            f"{str(getattr(exc, 'orig', None) or exc).strip()}",
            hint="Check the table, its columns and the database URL.",
        ) from None
    finally:
        engine.dispose()
