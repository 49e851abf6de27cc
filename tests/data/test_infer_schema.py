"""infer_schema, write_schema, load_schema: strict pandera schemas that survive YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from shipyard.data import infer_schema, load_schema, validate, write_schema
from shipyard.data.schema import null_fraction_limits, row_bounds
from shipyard.errors import DataError

TRAIN = pd.DataFrame(
    {
        "age": pd.array([25, 32, None, 41, 58, 37, 29, 45, 33, 50], dtype="Int64"),
        "income": [1.5, 2.5, 3.0, 4.1, 5.2, 2.2, 3.3, 4.4, 1.1, 2.0],
        "city": [
            "paris",
            "lyon",
            "paris",
            "nice",
            "lyon",
            "paris",
            "nice",
            "lyon",
            "paris",
            "nice",
        ],
        "member": [True, False, True, True, False, True, False, True, True, False],
        "signup": pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC"),
        "user": [f"u{i}" for i in range(10)],
    }
)


def _check(schema: pa.DataFrameSchema, column: str, name: str) -> pa.Check:
    return next(check for check in schema.columns[column].checks if check.name == name)


def test_inferred_dtypes_nullability_and_strictness() -> None:
    schema = infer_schema(TRAIN)
    assert schema.strict is True
    dtypes = {name: str(column.dtype) for name, column in schema.columns.items()}
    assert dtypes == {
        "age": "Int64",
        "income": "float64",
        "city": "string[pyarrow]",
        "member": "boolean",
        "signup": "datetime64[ns, UTC]",
        "user": "string[pyarrow]",
    }
    assert schema.columns["age"].nullable is True
    assert schema.columns["income"].nullable is False
    assert null_fraction_limits(schema) == {"age": 0.1}


def test_inferred_ranges_and_categories() -> None:
    schema = infer_schema(TRAIN, max_categories=5)
    assert _check(schema, "age", "in_range").statistics["min_value"] == 25
    assert _check(schema, "age", "in_range").statistics["max_value"] == 58
    assert _check(schema, "income", "in_range").statistics["max_value"] == 5.2
    assert _check(schema, "city", "isin").statistics["allowed_values"] == ["lyon", "nice", "paris"]
    # Ten distinct users exceed max_categories: no allowed-values check.
    assert schema.columns["user"].checks == []
    assert schema.columns["signup"].checks == []


def test_range_margin_widens_both_sides() -> None:
    schema = infer_schema(TRAIN, range_margin=0.1)
    age = _check(schema, "age", "in_range").statistics
    assert (age["min_value"], age["max_value"]) == (21, 62)  # width 33 -> 3.3, rounded out
    income = _check(schema, "income", "in_range").statistics
    assert income["min_value"] == pytest.approx(1.1 - 0.41)
    assert income["max_value"] == pytest.approx(5.2 + 0.41)


def test_null_tolerance_is_added_to_the_observed_fraction() -> None:
    schema = infer_schema(TRAIN, null_tolerance=0.05)
    limits = null_fraction_limits(schema)
    assert limits["age"] == 0.15
    assert limits["income"] == 0.05
    assert schema.columns["income"].nullable is True


def test_row_bounds_default_to_a_tenth_of_the_rows() -> None:
    big = pd.DataFrame({"x": np.arange(1234)})
    assert row_bounds(infer_schema(big)) == (123, None)
    assert row_bounds(infer_schema(big.iloc[:3])) == (1, None)


def test_the_data_a_schema_was_inferred_from_passes_it() -> None:
    third = pd.DataFrame({"x": [1.0, None, 3.0]})
    for frame in (TRAIN, third, TRAIN.iloc[:1]):
        report = validate(frame, infer_schema(frame))
        assert report.ok, report.failures


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="null_tolerance"):
        infer_schema(TRAIN, null_tolerance=1.5)
    with pytest.raises(ValueError, match="range_margin"):
        infer_schema(TRAIN, range_margin=-0.1)
    with pytest.raises(DataError, match="duplicate column names"):
        infer_schema(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_yaml_round_trip_is_stable(tmp_path: Path) -> None:
    schema = infer_schema(TRAIN, null_tolerance=0.01, range_margin=0.05)
    write_schema(schema, tmp_path / "schema.yaml")
    text = (tmp_path / "schema.yaml").read_text()
    assert text.startswith("# Shipyard data schema")
    assert "max_null_fraction" in text
    loaded = load_schema(tmp_path / "schema.yaml")
    assert loaded.metadata == schema.metadata
    assert loaded.strict is True
    write_schema(loaded, tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_text() == text


def test_yaml_round_trip_keeps_the_verdicts(tmp_path: Path) -> None:
    schema = infer_schema(TRAIN)
    write_schema(schema, tmp_path / "schema.yaml")
    loaded = load_schema(tmp_path / "schema.yaml")
    candidates = [
        TRAIN,
        TRAIN.assign(age=pd.array([None] * 10, dtype="Int64")),
        TRAIN.assign(income=TRAIN["income"] * 10, city="rome"),
        TRAIN.drop(columns=["member"]).assign(extra=1),
        TRAIN.assign(age=TRAIN["age"].astype("str")),
        TRAIN.iloc[:0],
    ]
    for frame in candidates:
        assert validate(frame, loaded).to_dict() == validate(frame, schema).to_dict()


def test_load_schema_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No schema at") as caught:
        load_schema(tmp_path / "missing.yaml")
    assert "shipyard data schema infer" in str(caught.value.hint)
    broken = {
        "bad-yaml.yaml": "columns: [unclosed",
        "unknown-check.yaml": (
            "schema_type: dataframe\ncolumns:\n  x:\n    dtype: int64\n    no_such_check: 1\n"
        ),
        "bad-dtype.yaml": "schema_type: dataframe\ncolumns:\n  x:\n    dtype: not_a_dtype\n",
        "bad-limits.yaml": "schema_type: dataframe\nmetadata:\n  shipyard:\n    min_rows: many\n",
        "bad-fraction.yaml": (
            "schema_type: dataframe\nmetadata:\n  shipyard:\n    max_null_fraction: {x: 2}\n"
        ),
    }
    for name, text in broken.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match="not a valid pandera schema"):
            load_schema(tmp_path / name)


def test_plain_pandera_yaml_loads_without_shipyard_metadata(tmp_path: Path) -> None:
    schema = pa.DataFrameSchema({"x": pa.Column("int64", pa.Check.ge(0))})
    (tmp_path / "plain.yaml").write_text(schema.to_yaml() or "")
    loaded = load_schema(tmp_path / "plain.yaml")
    assert row_bounds(loaded) == (None, None)
    assert (
        validate(pd.DataFrame({"x": [1, -1]}), loaded).failures[0].check
        == "greater_than_or_equal_to"
    )
