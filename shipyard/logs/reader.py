"""Read the prediction and label logs back with DuckDB.

Both functions scan only the model's own partition (and, with ``since``, only the dates
from that day on), so a window query stays fast however long the log grows. A column a
kind gained later (the label log's ``sender``, say) reads as null in older files.

The root is a local folder (a ``Path``) or a bucket prefix (a
:class:`~shipyard.storage.location.Location`): DuckDB reads a bucket's objects through
the fsspec file system registered on its connection, every host's files alike (no
httpfs extension needed).

What they return is the log as written: PII-tagged input columns are already hashed or
absent (:mod:`shipyard.logs.pii`); raw values are only in the separate raw store.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from shipyard.errors import DataError
from shipyard.jsonable import dump_json
from shipyard.logs.kinds import log_schema, model_dir
from shipyard.logs.losses import LogCoverage, log_coverage
from shipyard.logs.root import day_files, model_location
from shipyard.moments import as_utc
from shipyard.storage.location import Location

_COVERAGE = b"shipyard.log_coverage"

_JOIN_LABELS = """
SELECT predictions.*, labels.label, labels.label_time, labels.label_sender
FROM predictions
LEFT JOIN (
    SELECT
        request_id,
        arg_max(label, (time, coalesce(received_at, time))) AS label,
        max(time) AS label_time,
        arg_max(sender, (time, coalesce(received_at, time))) AS label_sender
    FROM labels
    GROUP BY request_id
) AS labels USING (request_id)
ORDER BY predictions.time, predictions.request_id
"""


def query_log(
    root: Path | Location,
    model: str,
    *,
    kind: str = "predictions",
    since: datetime | None = None,
    sql: str | None = None,
    labels_since: datetime | None = None,
) -> pa.Table:
    """``model``'s log rows from ``since`` on, or the result of ``sql`` over them.

    ``sql`` sees the rows as a view named ``log``, for example
    ``SELECT version, count(*) FROM log GROUP BY 1``. Without files, the result is an
    empty table with the log's columns. With ``labels_since``, ``sql`` also sees the
    model's label log from that moment on as a view named ``labels`` (the same source
    wherever the log lives, a bucket included).
    """
    with _connect() as con:
        _create_view(con, "log", root, kind, model, since)
        if labels_since is not None:
            _create_view(con, "labels", root, "labels", model, labels_since)
        if sql is None:
            return _execute(con, "SELECT * FROM log ORDER BY time, request_id", kind, model)
        columns = ", ".join(f"{field.name} {field.type}" for field in log_schema(kind))
        return _execute(
            con,
            sql,
            kind,
            model,
            hint=f"Query the view named `log`; its columns are: {columns}.",
        )


def join_labels(root: Path | Location, model: str, since: datetime | None = None) -> pa.Table:
    """``model``'s predictions from ``since`` on, each with its latest label (or null).

    Adds three columns to the prediction log's: ``label`` (JSON), ``label_time`` and
    ``label_sender`` (who sent it). With ``labels.on_conflict: keep_last`` a request may
    have several labels; the latest (by ``time``, then by when it was received) wins.

    The table's schema metadata holds the window's log coverage (predictions lost to a
    full disk, say, have no row to join): read it with :func:`joined_coverage`.
    """
    with _connect() as con:
        _create_view(con, "predictions", root, "predictions", model, since)
        # Labels arrive after their predictions but may lag by days: read them all.
        _create_view(con, "labels", root, "labels", model, None)
        table = _execute(con, _JOIN_LABELS, "predictions", model)
    coverage = log_coverage(root, model, table.num_rows, since=since)
    metadata = dict(table.schema.metadata or {})
    metadata[_COVERAGE] = dump_json(coverage.to_dict())
    return table.replace_schema_metadata(metadata)


def joined_coverage(table: pa.Table) -> LogCoverage | None:
    """The log coverage of a :func:`join_labels` table (None for another table)."""
    raw = (table.schema.metadata or {}).get(_COVERAGE)
    if raw is None:
        return None
    found = orjson.loads(raw)
    return LogCoverage(logged=int(found["logged"]), lost=int(found["lost"]))


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def log_source(
    con: duckdb.DuckDBPyConnection,
    root: Path | Location,
    kind: str,
    model: str,
    *,
    since: datetime | None = None,
) -> str | None:
    """The ``read_parquet(...)`` expression over ``model``'s ``kind`` log on ``con``, with
    its ``date`` partition column; None while the log has no file (from ``since``'s day).

    For a bucket, the file system is registered on ``con`` and its listing read afresh
    (other hosts add files all the time); with ``since``, only the files of the days from
    then on are named, so DuckDB never fetches the footers of older days' objects.
    """
    if isinstance(root, Location) and not root.is_local:
        folder = model_location(root, kind, model)
        files = day_files(folder)
        if since is not None:
            first = f"date={as_utc(since).date().isoformat()}"
            files = [path for path in files if path.rsplit("/", 2)[-2] >= first]
        if not files:
            return None
        folder.duckdb_source(con, "")  # registers the bucket's file system on con
        listed = ", ".join(sql_literal(path) for path in files)
        return (
            f"read_parquet([{listed}], "
            "hive_partitioning = true, hive_types = {'date': 'DATE'}, union_by_name = true)"
        )
    local = root.local_path() if isinstance(root, Location) else Path(root)
    directory = model_dir(local, kind, model)
    if not any(directory.glob("date=*/*.parquet")):
        return None
    pattern = str(directory / "date=*" / "*.parquet")
    return (
        f"read_parquet({sql_literal(pattern)}, "
        "hive_partitioning = true, hive_types = {'date': 'DATE'}, union_by_name = true)"
    )


def _create_view(
    con: duckdb.DuckDBPyConnection,
    name: str,
    root: Path | Location,
    kind: str,
    model: str,
    since: datetime | None,
) -> None:
    schema = log_schema(kind)
    directory = model_location(root, kind, model)
    filters = [f"model = {sql_literal(model)}"]
    if since is not None:
        filters.append(f"time >= {sql_literal(as_utc(since).isoformat())}::TIMESTAMPTZ")
    found = log_source(con, root, kind, model, since=since)
    if found is not None:
        source = found
        if since is not None:  # prunes whole date directories before reading a file
            filters.append(f"date >= DATE {sql_literal(as_utc(since).date().isoformat())}")
    else:
        source = f"_{name}_empty"
        con.register(source, schema.empty_table())
    try:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        columns = ", ".join(
            f'"{field.name}"' if field.name in present else _null_column(con, name, field)
            for field in schema
        )
        con.execute(
            f"CREATE VIEW {name} AS SELECT {columns} FROM {source} WHERE {' AND '.join(filters)}"
        )
    except duckdb.Error as exc:
        raise DataError(
            f"Cannot read the {kind} log of {model!r} under {directory}: {exc}",
            hint="A file there is not a Shipyard log file; move it out of the log directory.",
        ) from exc


def _execute(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    kind: str,
    model: str,
    hint: str = "Check that every file in the log directory was written by Shipyard.",
) -> pa.Table:
    try:
        relation = con.sql(sql)
        if relation is None:
            raise DataError(
                f"The SQL given for the {kind} log of {model!r} returns no rows: {sql!r}",
                hint="Pass a SELECT over the view named `log`.",
            )
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        raise DataError(f"Querying the {kind} log of {model!r} failed: {exc}", hint=hint) from exc


def _null_column(con: duckdb.DuckDBPyConnection, view: str, field: pa.Field) -> str:
    """A typed null for a column no file has yet (all written before the kind had it)."""
    like = f"_{view}_{field.name}_type"
    con.register(like, pa.schema([field]).empty_table())
    ((_, type_name, *_),) = con.execute(f"DESCRIBE SELECT * FROM {like}").fetchall()
    return f'NULL::{type_name} AS "{field.name}"'


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled), for DuckDB queries."""
    return "'" + text.replace("'", "''") + "'"
