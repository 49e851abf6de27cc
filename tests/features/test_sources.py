"""Reading feature sources: Parquet, folders, CSV, DuckDB SQL, PostgreSQL; schema checks."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import DataError
from shipyard.features import Entity, Feature, FeatureRepo, FeatureView, FileSource, SqlSource
from shipyard.features.definitions import PostgresSource
from shipyard.features.sources import (
    check_schema,
    connect,
    iter_source_batches,
    source_relation,
    source_schema,
)
from tests.support.features import FEAST_PIT, write_driver_stats

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FEATURES = (Feature("conv_rate", "float64"), Feature("trips", "int64"))


def view_of(source: FileSource | SqlSource | PostgresSource, **changes: object) -> FeatureView:
    fields: dict = {
        "name": "driver_stats",
        "entities": ("driver",),
        "source": source,
        "features": FEATURES,
        "created_timestamp_column": "created",
        "ttl": timedelta(hours=2),
    }
    return FeatureView(**(fields | changes))


def rows(view: FeatureView, root: Path, **kwargs: object) -> list[tuple]:
    con = connect()
    try:
        name = source_relation(con, view, root, **kwargs)  # type: ignore[arg-type]
        query = f"SELECT driver_id, event_timestamp, created, conv_rate, trips FROM {name}"
        return con.execute(query + " ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def expected() -> list[tuple]:
    """The oracle's six feature rows, as a DuckDB query over the Parquet file returns them."""
    frame = pd.read_csv(FEAST_PIT / "features.csv")
    out = []
    for row in frame.itertuples(index=False):
        out.append(
            (
                int(row.driver_id),
                pd.Timestamp(row.event_timestamp).to_pydatetime(),
                pd.Timestamp(row.created).to_pydatetime(),
                float(row.conv_rate),
                int(row.trips),
            )
        )
    return sorted(out)


def test_parquet_file_relative_to_the_project(tmp_path: Path, expected: list[tuple]) -> None:
    write_driver_stats(tmp_path / "data")
    got = rows(view_of(FileSource("data/driver_stats.parquet")), tmp_path)
    assert got == expected
    assert got[0][1].utcoffset() == timedelta(0)


def test_folder_of_parquet_files_unions_by_name(tmp_path: Path, expected: list[tuple]) -> None:
    first = write_driver_stats(tmp_path / "src", "a.parquet")
    frame = pd.read_parquet(first)
    frame.iloc[:3].to_parquet(first, index=False)
    tail = frame.iloc[3:].copy()
    tail["extra"] = "x"  # a column only one file has
    tail[list(reversed(tail.columns))].to_parquet(tmp_path / "src" / "b.parquet", index=False)
    assert rows(view_of(FileSource(str(tmp_path / "src"))), tmp_path / "elsewhere") == expected


def test_csv_with_iso_text_times(tmp_path: Path, expected: list[tuple]) -> None:
    shutil.copy(FEAST_PIT / "features.csv", tmp_path / "features.csv")
    assert rows(view_of(FileSource("features.csv")), tmp_path) == expected


def test_naive_timestamps_are_utc(tmp_path: Path, expected: list[tuple]) -> None:
    frame = pd.read_parquet(write_driver_stats(tmp_path))
    for column in ("event_timestamp", "created"):
        frame[column] = frame[column].dt.tz_localize(None)
    frame.to_parquet(tmp_path / "naive.parquet", index=False)
    assert rows(view_of(FileSource("naive.parquet")), tmp_path) == expected


def test_sql_source_reads_relative_paths_in_the_project(
    tmp_path: Path, expected: list[tuple]
) -> None:
    write_driver_stats(tmp_path / "data")
    sql = "SELECT * FROM read_parquet('data/driver_stats.parquet') WHERE driver_id <= 2;"
    got = rows(view_of(SqlSource(sql)), tmp_path)
    assert got == [row for row in expected if row[0] <= 2]


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere\.parquet"):
        rows(view_of(FileSource("nowhere.parquet")), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Parquet or CSV"):
        source_schema(view_of(FileSource("empty")), tmp_path)


def test_streaming_batches_are_bounded_and_filtered(tmp_path: Path) -> None:
    n = 2_000
    frame = pd.DataFrame(
        {
            "driver_id": [i % 7 for i in range(n)],
            "event_timestamp": pd.date_range(T0, periods=n, freq="min"),
            "created": pd.date_range(T0, periods=n, freq="min"),
            "conv_rate": [i / n for i in range(n)],
            "trips": list(range(n)),
        }
    )
    frame.to_parquet(tmp_path / "big.parquet", index=False)
    view = view_of(FileSource("big.parquet"))
    batches = list(iter_source_batches(view, tmp_path, batch_rows=128))
    assert all(b.num_rows <= 128 for b in batches)
    assert sum(b.num_rows for b in batches) == n and len(batches) >= n // 128
    assert str(batches[0].schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    since = T0 + timedelta(minutes=1_500)
    filtered = list(
        iter_source_batches(
            view, tmp_path, where_sql='"event_timestamp" > ?', params=[since], batch_rows=100
        )
    )
    trips = sorted(t for b in filtered for t in b.column("trips").to_pylist())
    assert trips == list(range(1_501, n))


def test_schema_is_read_without_rows(tmp_path: Path) -> None:
    write_driver_stats(tmp_path)
    schema = source_schema(view_of(FileSource("driver_stats.parquet")), tmp_path)
    assert schema == {
        "driver_id": "BIGINT",
        "event_timestamp": "TIMESTAMP WITH TIME ZONE",
        "created": "TIMESTAMP WITH TIME ZONE",
        "conv_rate": "DOUBLE",
        "trips": "BIGINT",
    }


GOOD = {
    "driver_id": "BIGINT",
    "event_timestamp": "TIMESTAMP WITH TIME ZONE",
    "created": "VARCHAR",
    "conv_rate": "DOUBLE",
    "trips": "INTEGER",
}


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"conv_rate": None}, "conv_rate"),
        ({"conv_rate": "VARCHAR"}, "conv_rate"),
        ({"trips": "DOUBLE"}, "trips"),
        ({"event_timestamp": None}, "event_timestamp"),
        ({"created": "DOUBLE"}, "created"),
        ({"driver_id": None}, "driver_id"),
    ],
)
def test_schema_check_names_the_column(change: dict, column: str) -> None:
    schema = {k: v for k, v in (GOOD | change).items() if v is not None}
    view = view_of(FileSource("x.parquet"))
    repo = FeatureRepo.of([Entity("driver", ("driver_id",)), view])
    with pytest.raises(DataError, match=repr(column)):
        check_schema(view, schema, repo)


def test_schema_check_accepts_compatible_types() -> None:
    view = view_of(FileSource("x.parquet"))
    check_schema(view, GOOD, ["driver_id"])
    check_schema(view, GOOD | {"conv_rate": "DECIMAL(10,3)", "trips": "BIGINT"}, ("driver_id",))
    strings = view_of(FileSource("x.parquet"), features=(Feature("city", "string"),))
    with pytest.raises(DataError, match=r"'city'.*BIGINT"):
        check_schema(strings, GOOD | {"city": "BIGINT"})


def test_postgres_table(tmp_path: Path, postgres_url: str, expected: list[tuple]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE driver_stats (driver_id BIGINT, event_timestamp TIMESTAMPTZ, "
                "created TIMESTAMP, conv_rate DOUBLE PRECISION, trips INTEGER, note TEXT)"
            )
        )
        for row in expected:
            conn.execute(
                text("INSERT INTO driver_stats VALUES (:a, :b, :c, :d, :e, 'n')"),
                {
                    "a": row[0],
                    "b": row[1],
                    "c": row[2].replace(tzinfo=None),
                    "d": row[3],
                    "e": row[4],
                },
            )
    engine.dispose()
    view = view_of(PostgresSource("driver_stats"))
    assert rows(view, tmp_path, project_db_url=postgres_url) == expected
    own = view_of(PostgresSource("public.driver_stats", postgres_url))
    schema = source_schema(own, tmp_path)
    assert schema["trips"] == "INTEGER" and schema["note"] == "VARCHAR"
    assert schema["created"] == "TIMESTAMP" and schema["event_timestamp"].startswith("TIMESTAMP W")
    check_schema(own, schema, ["driver_id"])
    batches = list(
        iter_source_batches(
            own,
            tmp_path,
            where_sql='"event_timestamp" >= ? AND "driver_id" = ?',
            params=[T0 + timedelta(hours=1), 1],
            batch_rows=2,
        )
    )
    assert [b.num_rows for b in batches] == [2, 1]
    got = [b.column("created").type for b in batches]
    assert all(str(t) == "timestamp[us, tz=UTC]" for t in got)
    assert sorted(v for b in batches for v in b.column("trips").to_pylist()) == [11, 12, 99]


def test_postgres_missing_table_or_url(tmp_path: Path, postgres_url: str) -> None:
    from shipyard.errors import ConfigError

    with pytest.raises(DataError, match="nowhere"):
        source_schema(view_of(PostgresSource("nowhere", postgres_url)), tmp_path)
    with pytest.raises(ConfigError, match="no PostgreSQL URL"):
        source_schema(view_of(PostgresSource("t")), tmp_path, "sqlite:///x.db")


def test_a_failing_sql_source_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Cannot read the source of feature view 'driver_stats'"):
        source_schema(view_of(SqlSource("SELECT * FROM no_such_table")), tmp_path)
