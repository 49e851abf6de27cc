"""validate: every failure at once, one row per (column, check), same verdict for any encoding."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, given, settings
from rich.console import Console

from shipyard.data import (
    CheckFailure,
    ValidationReport,
    infer_schema,
    load_schema,
    read_frame,
    validate,
    write_schema,
)
from shipyard.errors import ValidationFailed
from tests.support.tables import any_tables, csv_safe_tables

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRAIN = pd.DataFrame(
    {
        "age": [25.0, 32.0, np.nan, 41.0, 58.0, 37.0, 29.0, 45.0, 33.0, 50.0],
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
        "visits": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
    }
)
SCHEMA = infer_schema(TRAIN)


def _by_check(report: ValidationReport) -> dict[tuple[str | None, str], CheckFailure]:
    return {(failure.column, failure.check): failure for failure in report.failures}


def test_clean_data_passes() -> None:
    report = validate(TRAIN, SCHEMA)
    assert report.ok
    assert report.failures == []
    assert report.rows == 10
    report.raise_for_failures()  # does not raise


def test_all_problems_are_reported_at_once() -> None:
    bad = pd.DataFrame(
        {
            "age": ["x", "30", None, "y"],  # wrong dtype, and more nulls than seen
            "income": [1.0, 99.0, np.nan, 99.0],  # out of range twice, and a null
            "city": ["paris", "rome", "berlin", "rome"],  # unseen categories
            "extra": [1, 2, 3, 4],  # unknown column
            "visits": [1, 2, 3, 100],  # out of range
        }
    )  # "member" is missing
    failures = _by_check(validate(bad, SCHEMA))
    assert set(failures) == {
        ("age", "dtype"),
        ("age", "null_fraction"),
        ("income", "in_range"),
        ("income", "not_nullable"),
        ("city", "isin"),
        ("member", "missing_column"),
        ("extra", "unknown_column"),
        ("visits", "in_range"),
    }
    assert failures[("age", "dtype")].observed == "str"
    assert failures[("age", "dtype")].expected == "float64"
    assert failures[("age", "dtype")].samples == ["x", "y"]
    assert failures[("income", "in_range")].samples == [1.0, 99.0]
    assert failures[("income", "in_range")].observed.startswith("3 failing values")
    assert failures[("income", "in_range")].expected == "within [1.1, 5.2]"
    assert failures[("city", "isin")].samples == ["rome", "berlin"]
    assert failures[("city", "isin")].expected == "one of lyon, nice, paris"
    assert failures[("visits", "in_range")].samples == [100]


def test_samples_are_at_most_five_distinct_values() -> None:
    cities = [f"town{i}" for i in range(8)] * 3
    report = validate(TRAIN.iloc[[0] * 24].assign(city=cities).reset_index(drop=True), SCHEMA)
    (failure,) = report.failures
    assert failure.check == "isin"
    assert failure.samples == [f"town{i}" for i in range(5)]
    assert failure.observed.startswith("24 unseen values")


def test_failures_are_ordered_table_first_then_schema_columns() -> None:
    schema = infer_schema(pd.concat([TRAIN] * 10, ignore_index=True))
    bad = TRAIN.assign(visits=-1, age=1000.0, extra=0).iloc[:3]
    assert [(f.column, f.check) for f in validate(bad, schema).failures] == [
        (None, "row_count"),
        ("age", "in_range"),
        ("visits", "in_range"),
        ("extra", "unknown_column"),
    ]


def test_row_count_bounds() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema.metadata = {"shipyard": {"min_rows": 5, "max_rows": 8}}
    failures = _by_check(validate(TRAIN, schema))
    assert failures[(None, "row_count")].observed == "10 rows"
    assert failures[(None, "row_count")].expected == "between 5 and 8 rows"
    assert not validate(TRAIN.iloc[:6], schema).failures
    assert validate(TRAIN.iloc[:0], SCHEMA).failures[0].expected == "at least 1 rows"


def test_null_fraction_limit() -> None:
    more_nulls = TRAIN.assign(age=[np.nan] * 3 + [30.0] * 7)
    failure = _by_check(validate(more_nulls, SCHEMA))[("age", "null_fraction")]
    assert failure.observed == "0.3 (3 of 10 rows)"
    assert failure.expected == "at most 0.1"


def test_lossless_encodings_pass_and_lossy_ones_fail() -> None:
    as_parquet_would = TRAIN.assign(
        age=pd.array([25, 32, None, 41, 58, 37, 29, 45, 33, 50], dtype="Int64"),
        city=TRAIN["city"].astype("category"),
        member=TRAIN["member"].astype(object),
        visits=TRAIN["visits"].astype("int8"),
    )
    assert validate(as_parquet_would, SCHEMA).ok
    fractional = TRAIN.assign(visits=TRAIN["visits"] + 0.5)
    failure = _by_check(validate(fractional, SCHEMA))[("visits", "dtype")]
    assert (failure.observed, failure.expected) == ("float64", "Int64")
    assert failure.samples[:2] == [3.5, 1.5]


def test_a_check_added_by_hand_is_reported_by_its_name() -> None:
    schema = SCHEMA.update_column("income", checks=[pa.Check.le(3.0)])
    (failure,) = validate(TRAIN, schema).failures
    assert (failure.column, failure.check) == ("income", "less_than_or_equal_to")
    assert failure.expected == "less_than_or_equal_to(max_value=3.0)"
    assert failure.samples == [4.1, 5.2, 3.3, 4.4]


@PROPERTY
@given(table=any_tables())
def test_the_data_a_schema_was_inferred_from_passes_it(table: pd.DataFrame) -> None:
    if len(table) == 0:
        table = table.reindex([0])  # an empty table fails "at least one row"
    report = validate(table, infer_schema(table))
    assert report.ok, report.failures


@PROPERTY
@given(table=csv_safe_tables(max_rows=8))
def test_csv_and_parquet_of_the_same_data_validate_the_same(
    table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("validate")
    reference = table.iloc[: len(table) // 2]
    schema = infer_schema(reference)
    table.to_csv(folder / "t.csv", index=False)
    table.to_parquet(folder / "t.parquet", index=False)
    from_csv = validate(read_frame(folder / "t.csv"), schema)
    from_parquet = validate(read_frame(folder / "t.parquet"), schema)
    assert [(f.column, f.check, f.samples) for f in from_csv.failures] == [
        (f.column, f.check, f.samples) for f in from_parquet.failures
    ]


def test_csv_and_parquet_files_validate_alike_against_a_stored_schema(tmp_path: Path) -> None:
    write_schema(SCHEMA, tmp_path / "schema.yaml")
    schema = load_schema(tmp_path / "schema.yaml")
    drifted = TRAIN.assign(income=TRAIN["income"] * 2, city=["rome", *TRAIN["city"][1:]])
    drifted["age"] = drifted["age"].astype("Int64")
    drifted.to_csv(tmp_path / "d.csv", index=False)
    drifted.to_parquet(tmp_path / "d.parquet", index=False)
    from_csv = validate(read_frame(tmp_path / "d.csv"), schema)
    from_parquet = validate(read_frame(tmp_path / "d.parquet"), schema)
    assert from_csv.to_dict() == from_parquet.to_dict()
    assert {(f.column, f.check) for f in from_csv.failures} == {
        ("income", "in_range"),
        ("city", "isin"),
    }


def test_report_to_dict_is_json_ready() -> None:
    bad = TRAIN.assign(income=[np.inf] + [2.0] * 9, age=pd.to_datetime("2024-01-01"))
    data = json.loads(json.dumps(validate(bad, SCHEMA).to_dict(), allow_nan=False))
    assert data["ok"] is False
    assert data["rows"] == 10
    income = next(f for f in data["failures"] if f["column"] == "income")
    assert income["samples"] == ["inf"]
    assert set(income) == {"column", "check", "observed", "expected", "samples"}


def test_render_is_a_table_of_the_failures() -> None:
    bad = TRAIN.assign(city="rome", extra=1)
    table = validate(bad, SCHEMA).render()
    assert [column.header for column in table.columns] == [
        "column",
        "check",
        "observed",
        "expected",
        "sample offending values",
    ]
    assert table.row_count == 2
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "Validation failed: 2 checks on 10 rows" in text
    assert '"rome"' in text
    passed = Console(width=200, record=True)
    passed.print(validate(TRAIN, SCHEMA).render())
    assert "Validation passed" in passed.export_text()


def test_raise_for_failures_carries_the_report() -> None:
    report = validate(TRAIN.assign(city="rome", visits=0), SCHEMA)
    with pytest.raises(ValidationFailed, match="2 data checks failed on 10 rows") as caught:
        report.raise_for_failures()
    assert caught.value.report is report
    assert "shipyard data schema infer" in str(caught.value.hint)


def test_a_column_of_nulls_fits_any_dtype_but_nulls_still_count() -> None:
    schema = infer_schema(pd.DataFrame({"flag": [True, False], "n": [1, 2]}))
    nulls = pd.DataFrame({"flag": [None, None], "n": [None, None]}, dtype=object)
    failures = _by_check(validate(nulls, schema))
    assert set(failures) == {("flag", "not_nullable"), ("n", "not_nullable")}
    strict_bool = pa.DataFrameSchema({"flag": pa.Column("bool")})
    assert _by_check(validate(nulls[["flag"]], strict_bool))[("flag", "dtype")].expected == "bool"


def test_table_level_and_erroring_checks_added_by_hand() -> None:
    schema = SCHEMA.update_column(
        "city", checks=[pa.Check(lambda s: s.str.len().mean() > 100, name="long_names")]
    )
    schema.checks = [pa.Check(lambda df: df["visits"].sum() > 1000, name="enough_visits")]
    failures = _by_check(validate(TRAIN, schema))
    assert failures[("city", "long_names")].observed == "failed"
    assert failures[(None, "enough_visits")].observed == "failed"
    erroring = SCHEMA.update_column("city", checks=[pa.Check(lambda s: s / 2, name="halve")])
    (failure,) = validate(TRAIN, erroring).failures
    assert failure.observed.startswith("check errored: ")
