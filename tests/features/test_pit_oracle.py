"""The point-in-time join gives Feast 0.67's own answers on its oracle cases (shared/feast-pit)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from shipyard.errors import ConfigError
from shipyard.features.pit import ROW_COLUMN, ViewJoin, output_names, point_in_time_join
from tests.support.features import driver_entities, read_feast_csv

DRIVER_STATS = ViewJoin(
    "driver_stats",
    "source",
    ("driver_id",),
    (("conv_rate", "conv_rate"), ("trips", "trips")),
    timestamp_field="event_timestamp",
    created_column="created",
    ttl=timedelta(hours=2),
)
ORDER = ["driver_id", "event_timestamp", "label"]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    entities = driver_entities()
    entities[ROW_COLUMN] = range(len(entities))
    connection.register("source", read_feast_csv("features.csv"))
    connection.register("entities", entities)
    return connection


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(ORDER, kind="stable").reset_index(drop=True)


def _assert_matches(ours: pd.DataFrame, truth_file: str) -> None:
    truth = _sorted(read_feast_csv(truth_file))
    ours = _sorted(ours)
    assert list(ours.columns) == list(truth.columns)
    assert len(ours) == len(truth) == 10  # the duplicated entity row is kept
    for column in ORDER:
        assert ours[column].tolist() == truth[column].tolist(), column
    for column in ("conv_rate", "trips"):
        assert ours[column].isna().tolist() == truth[column].isna().tolist(), column
        got = ours[column].astype("float64").fillna(-1).tolist()
        assert got == pytest.approx(truth[column].fillna(-1).tolist()), column


@pytest.mark.parametrize("strategy", ["asof", "rank"])
def test_event_time_gives_feasts_default_answers(con, strategy) -> None:
    out = point_in_time_join(
        con, "entities", [DRIVER_STATS], row_column=ROW_COLUMN, strategy=strategy
    )
    _assert_matches(out, "truth_event_time.csv")


@pytest.mark.parametrize("strategy", ["asof", "rank"])
def test_as_known_at_gives_feasts_created_cutoff_answers(con, strategy) -> None:
    out = point_in_time_join(
        con,
        "entities",
        [DRIVER_STATS],
        mode="as_known_at",
        row_column=ROW_COLUMN,
        strategy=strategy,
    )
    _assert_matches(out, "truth_created_cutoff.csv")


def test_rows_keep_the_entity_order_and_duplicates(con) -> None:
    out = point_in_time_join(con, "entities", [DRIVER_STATS], row_column=ROW_COLUMN)
    entities = driver_entities()
    assert out["label"].tolist() == entities["label"].tolist()
    assert ROW_COLUMN not in out.columns
    assert out.loc[9, "conv_rate"] == pytest.approx(0.1)  # the duplicate of row 0


def test_without_a_row_column_a_large_frame_keeps_its_order() -> None:
    import numpy as np

    rows = 300_000  # several row groups: a parallel scan
    rng = np.random.default_rng(3)
    entities = pd.DataFrame(
        {
            "driver_id": rng.integers(1, 5, rows),
            "event_timestamp": pd.Timestamp("2024-01-01 03:00", tz="UTC"),
            "label": np.arange(rows),
        }
    )
    connection = duckdb.connect()
    connection.register("source", read_feast_csv("features.csv"))
    connection.register("big", entities)
    out = point_in_time_join(connection, "big", [DRIVER_STATS])
    assert out["label"].tolist() == list(range(rows))
    assert out["conv_rate"].notna().sum() == (entities["driver_id"] == 1).sum()


@pytest.mark.parametrize("strategy", ["asof", "rank"])
def test_as_served_sees_only_rows_of_finished_runs(con, strategy) -> None:
    at = pd.Timestamp("2024-01-01 00:00", tz="UTC")
    runs = pd.DataFrame(
        {
            "view": ["driver_stats"],
            "started_at": [at + pd.Timedelta("1h30min")],
            "finished_at": [at + pd.Timedelta("1h40min")],
            "start_ts": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"),
            "end_ts": [at + pd.Timedelta("1h30min")],
        }
    )
    con.register("runs", runs)
    out = point_in_time_join(
        con,
        "entities",
        [DRIVER_STATS],
        mode="as_served",
        runs="runs",
        row_column=ROW_COLUMN,
        strategy=strategy,
    )
    # 00:30 (rows 0 and 9) is before the run finished: the online store was empty.
    assert pd.isna(out.loc[0, "conv_rate"]) and pd.isna(out.loc[9, "conv_rate"])
    # 02:30: the run (finished 01:40) copied up to 01:30, so 01:00's row (0.11), never 02:00's.
    assert out.loc[2, "conv_rate"] == pytest.approx(0.11)
    # driver 2 at 01:59: the 00:00 row was copied; at 02:01 it is past its 2 h ttl.
    assert out.loc[4, "conv_rate"] == pytest.approx(0.2)
    assert pd.isna(out.loc[6, "conv_rate"])


def test_two_features_with_one_name_need_full_names() -> None:
    pairs = [("driver_stats", "conv_rate"), ("rider_stats", "conv_rate")]
    with pytest.raises(ConfigError, match="full_names"):
        output_names(pairs)
    assert output_names(pairs, full_names=True) == [
        "driver_stats__conv_rate",
        "rider_stats__conv_rate",
    ]
