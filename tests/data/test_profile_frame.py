"""profile_frame and Profile: statistics per column, strict JSON, exact round trip."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from shipyard.data import ColumnProfile, Profile, profile_frame, read_frame
from shipyard.errors import DataError
from tests.support.tables import any_tables, csv_safe_tables

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(table=any_tables())
def test_json_round_trip_is_exact_and_strict(table: pd.DataFrame) -> None:
    profile = profile_frame(table)
    text = profile.to_json()
    # Strict JSON: no NaN or Infinity tokens anywhere.
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-finite {token} in JSON"))
    assert Profile.from_json(text) == profile


@PROPERTY
@given(table=any_tables())
def test_statistics_are_consistent(table: pd.DataFrame) -> None:
    profile = profile_frame(table)
    assert profile.rows == len(table)
    assert profile.column_count == table.shape[1]
    for column in profile.columns:
        assert column.count + column.null_count == len(table)
        assert 0.0 <= column.null_fraction <= 1.0
        assert column.distinct <= column.count
        if column.histogram is not None:
            counted = sum(column.histogram.counts) + column.histogram.other
            assert counted == column.count - column.inf_count
        if column.quantiles is not None:
            values = list(dataclasses.astuple(column.quantiles))
            assert isinstance(column.min, float)
            assert isinstance(column.max, float)
            assert values == sorted(values)
            assert column.min <= values[0] and values[-1] <= column.max
        if column.kind == "categorical" and column.count:
            assert len(column.top) <= 20
            shares = sum(item.share for item in column.top) + column.other_share
            assert math.isclose(shares, 1.0)


@PROPERTY
@given(table=csv_safe_tables())
def test_csv_and_parquet_of_one_table_profile_alike(
    table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("profile")
    table.to_csv(folder / "t.csv", index=False)
    table.to_parquet(folder / "t.parquet", index=False)
    from_csv = profile_frame(read_frame(folder / "t.csv"))
    from_parquet = profile_frame(read_frame(folder / "t.parquet"))
    for left, right in zip(from_csv.columns, from_parquet.columns, strict=True):
        if left.count:  # an all-null column has no kind to recover from CSV
            # The pandas dtype names differ by encoding; every statistic must not.
            assert dataclasses.replace(left, dtype="") == dataclasses.replace(right, dtype="")


def test_numeric_column() -> None:
    values = [float(v) for v in range(1, 101)]
    profile = profile_frame(pd.DataFrame({"x": [*values, np.nan, np.inf, -np.inf]}))
    x = profile.column("x")
    assert (x.kind, x.count, x.null_count, x.inf_count) == ("numeric", 102, 1, 2)
    assert math.isclose(x.null_fraction, 1 / 103)
    assert (x.min, x.max, x.distinct) == (1.0, 100.0, 102)
    assert x.quantiles is not None
    assert x.quantiles.p50 == pytest.approx(np.quantile(values, 0.5))
    assert x.quantiles.p99 == pytest.approx(np.quantile(values, 0.99))
    assert x.mean == pytest.approx(50.5)
    assert x.histogram is not None
    assert len(x.histogram.edges) == 21 and len(x.histogram.counts) == 20
    assert x.histogram.edges[0] == 1.0 and x.histogram.edges[-1] == 100.0
    assert x.histogram.counts == (5,) * 20
    assert sum(x.histogram.counts) == 100


def test_constant_column_has_one_bin() -> None:
    x = profile_frame(pd.DataFrame({"x": [7, 7, 7]})).column("x")
    assert x.histogram is not None
    assert x.histogram.edges == (7.0, 7.0)
    assert x.histogram.counts == (3,)


def test_categorical_column_keeps_top_twenty_and_other() -> None:
    values = [f"v{i:02d}" for i in range(25) for _ in range(25 - i)]
    column = profile_frame(pd.DataFrame({"c": pd.Series([*values, None], dtype="str")})).column("c")
    assert column.kind == "categorical"
    assert column.distinct == 25
    assert [item.value for item in column.top] == [f"v{i:02d}" for i in range(20)]
    assert column.top[0].count == 25
    assert column.top[0].share == pytest.approx(25 / len(values))
    other = sum(range(1, 6))
    assert column.other_share == pytest.approx(other / len(values))
    assert column.histogram is not None
    assert column.histogram.labels == tuple(item.value for item in column.top)
    assert column.histogram.other == other


def test_boolean_and_datetime_columns() -> None:
    frame = pd.DataFrame(
        {
            "flag": pd.array([True, True, False, None], dtype="boolean"),
            "at": pd.to_datetime(
                ["2024-01-02", "2024-01-01", None, "2024-03-01 12:00+02:00"],
                utc=True,
                format="ISO8601",
            ),
        }
    )
    profile = profile_frame(frame)
    flag, at = profile.column("flag"), profile.column("at")
    assert flag.kind == "boolean"
    assert [(item.value, item.count) for item in flag.top] == [("True", 2), ("False", 1)]
    assert at.kind == "datetime"
    assert (at.min, at.max) == ("2024-01-01T00:00:00+00:00", "2024-03-01T10:00:00+00:00")
    assert at.distinct == 3


def test_ties_between_categories_keep_first_appearance() -> None:
    column = profile_frame(pd.DataFrame({"c": ["b", "a", "a", "b", "c"]})).column("c")
    assert [item.value for item in column.top] == ["b", "a", "c"]


def test_empty_frame() -> None:
    profile = profile_frame(pd.DataFrame({"x": pd.Series([], dtype="float64")}))
    x = profile.column("x")
    assert (profile.rows, x.count, x.null_fraction, x.quantiles, x.histogram) == (
        0,
        0,
        0.0,
        None,
        None,
    )


def test_save_and_load(tmp_path: Path) -> None:
    profile = profile_frame(pd.DataFrame({"x": [1, 2, 3], "c": ["a", "b", "a"]}))
    profile.save(tmp_path / "deep" / "profile.json")
    assert Profile.load(tmp_path / "deep" / "profile.json") == profile


def test_load_errors_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No profile at"):
        Profile.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"rows": 1}')
    with pytest.raises(DataError, match="not a valid Shipyard profile"):
        Profile.load(tmp_path / "bad.json")


def test_unknown_column_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="'nope'"):
        profile_frame(pd.DataFrame({"x": [1]})).column("nope")


def test_column_profile_ignores_unknown_keys_for_forward_compatibility() -> None:
    column = profile_frame(pd.DataFrame({"x": [1.0, 2.0]})).column("x")
    data = {**dataclasses.asdict(column), "added_in_a_later_version": 1}
    assert ColumnProfile.from_dict(data) == column
