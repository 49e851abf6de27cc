"""dataset_digest: equal for the same table however encoded, different for any change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shipyard.data import dataset_digest, read_frame
from tests.support.tables import any_tables, csv_safe_tables

# Recorded once; if the canonical encoding changes on purpose, bump _DIGEST_VERSION too.
PINNED_DIGEST = "06413e6233c70cf66a4eac07ce103397356f6b227a2c3e84d437ce295be2ae19"

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_digest_is_hex_sha256() -> None:
    digest = dataset_digest(pd.DataFrame({"a": [1, 2]}))
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_digest_is_pinned_for_a_known_table() -> None:
    # Guards the canonical encoding: if this changes, stored snapshots change address.
    table = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "score": [0.5, None, 2.25],
            "city": ["paris", "lyon", None],
            "member": [True, False, True],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02", None], utc=True),
        }
    )
    assert dataset_digest(table) == dataset_digest(table.copy())
    assert dataset_digest(table) == PINNED_DIGEST


@PROPERTY
@given(table=csv_safe_tables())
def test_same_table_from_csv_and_parquet_has_the_same_digest(
    table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("digest")
    table.to_csv(folder / "t.csv", index=False)
    table.to_parquet(folder / "t.parquet", index=False)
    from_csv = read_frame(folder / "t.csv")
    from_parquet = read_frame(folder / "t.parquet")
    assert dataset_digest(from_csv) == dataset_digest(from_parquet) == dataset_digest(table)


@PROPERTY
@given(table=any_tables())
def test_digest_is_deterministic_and_ignores_the_index(table: pd.DataFrame) -> None:
    shifted = table.set_axis(range(100, 100 + len(table)))
    assert dataset_digest(table) == dataset_digest(table.copy(deep=True))
    assert dataset_digest(shifted) == dataset_digest(table)


@PROPERTY
@given(
    values=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20),
    data=st.data(),
)
def test_changing_one_value_changes_the_digest(values: list[int], data: st.DataObject) -> None:
    table = pd.DataFrame({"x": values, "y": [str(v) for v in values]})
    row = data.draw(st.integers(0, len(values) - 1))
    column = data.draw(st.sampled_from(["x", "y"]))
    changed = table.copy()
    if column == "x":
        changed.loc[row, "x"] = values[row] + data.draw(st.integers(1, 1000))
    else:
        changed.loc[row, "y"] = str(values[row]) + data.draw(st.sampled_from(["a", "0", " "]))
    assert dataset_digest(changed) != dataset_digest(table)


@PROPERTY
@given(values=st.lists(st.floats(allow_nan=False), min_size=2, max_size=20, unique=True))
def test_row_order_is_part_of_the_identity(values: list[float]) -> None:
    table = pd.DataFrame({"x": values})
    assume(not (table["x"] == 0).all())
    assert dataset_digest(table.iloc[::-1]) != dataset_digest(table)


def test_column_names_and_order_are_part_of_the_identity() -> None:
    table = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    assert dataset_digest(table[["b", "a"]]) != dataset_digest(table)
    assert dataset_digest(table.rename(columns={"a": "z"})) != dataset_digest(table)
    assert dataset_digest(table[["a"]]) != dataset_digest(table)


def test_a_null_is_not_equal_to_any_value() -> None:
    assert dataset_digest(pd.DataFrame({"x": [1.0, None]})) != dataset_digest(
        pd.DataFrame({"x": [1.0, 0.0]})
    )
    assert dataset_digest(pd.DataFrame({"s": ["a", None]})) != dataset_digest(
        pd.DataFrame({"s": ["a", ""]})
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (pd.Series([1, 2, 3], dtype="int8"), pd.Series([1, 2, 3], dtype="int64")),
        (pd.Series([1, None, 3], dtype="Int64"), pd.Series([1.0, np.nan, 3.0])),
        (pd.Series([1, 2], dtype="uint16"), pd.Series([1.0, 2.0], dtype="float32")),
        (pd.Series([0.5, None], dtype="Float64"), pd.Series([0.5, np.nan])),
        (pd.Series(["a", "b", None], dtype="str"), pd.Series(["a", "b", None], dtype=object)),
        (
            pd.Series(["a", "b", None], dtype="category"),
            pd.Series(["a", "b", None], dtype="string"),
        ),
        (pd.Series([True, None], dtype="boolean"), pd.Series([True, None], dtype=object)),
        (pd.Series([True, False]), pd.Series([True, False], dtype="boolean")),
        (
            pd.Series(pd.to_datetime(["2024-01-01 10:00"])),
            pd.Series(pd.to_datetime(["2024-01-01 11:00+01:00"])).dt.as_unit("ns"),
        ),
        (pd.Series([None, None], dtype=object), pd.Series([np.nan, np.nan])),
        (pd.Series([1, 2], dtype="category"), pd.Series([1, 2])),
    ],
    ids=[
        "int-widths",
        "int-with-gaps-vs-float",
        "integral-floats",
        "nullable-float",
        "str-vs-object",
        "category-vs-string",
        "boolean-with-gaps-vs-object",
        "bool-vs-boolean",
        "datetime-naive-utc-vs-offset",
        "all-null",
        "numeric-category",
    ],
)
def test_encodings_of_the_same_values_share_a_digest(left: pd.Series, right: pd.Series) -> None:
    assert dataset_digest(pd.DataFrame({"c": left})) == dataset_digest(pd.DataFrame({"c": right}))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (pd.Series([1, 0]), pd.Series([True, False])),
        (pd.Series([1, 2]), pd.Series(["1", "2"])),
        (pd.Series([1.5, 2.0]), pd.Series([1.0, 2.0])),
    ],
    ids=["int-vs-bool", "int-vs-text", "float-vs-integral"],
)
def test_different_kinds_of_values_have_different_digests(
    left: pd.Series, right: pd.Series
) -> None:
    assert dataset_digest(pd.DataFrame({"c": left})) != dataset_digest(pd.DataFrame({"c": right}))


def test_folder_of_parts_has_the_digest_of_the_whole(tmp_path: Path) -> None:
    table = pd.DataFrame({"x": range(10), "y": [f"v{i}" for i in range(10)]})
    (tmp_path / "parts").mkdir()
    table.iloc[:4].to_parquet(tmp_path / "parts" / "part-0.parquet", index=False)
    table.iloc[4:].to_parquet(tmp_path / "parts" / "part-1.parquet", index=False)
    assert dataset_digest(read_frame(tmp_path / "parts")) == dataset_digest(table)
