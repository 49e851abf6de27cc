"""Hypothesis strategies for small tables, shared by the data tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from hypothesis import strategies as st

# Words pandas' CSV reader would turn into nulls, booleans or numbers.
_CSV_SPECIAL = {"nan", "null", "true", "false", "inf", "infinity", "none", "na"}

csv_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).filter(
    lambda word: word not in _CSV_SPECIAL
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def csv_safe_tables(draw: st.DrawFn, max_rows: int = 12) -> pd.DataFrame:
    """Tables whose values survive a trip through CSV: the same table, read back."""
    rows = draw(st.integers(min_value=0, max_value=max_rows))
    kinds = draw(
        st.lists(
            st.sampled_from(["int", "int_gaps", "float", "str", "bool", "bool_gaps", "time"]),
            min_size=1,
            max_size=6,
        )
    )
    columns: dict[str, pd.Series] = {}
    for position, kind in enumerate(kinds):
        gaps = (
            st.none() if kind.endswith("gaps") or kind in ("float", "str", "time") else st.nothing()
        )

        def cells(values: st.SearchStrategy[object], gaps: st.SearchStrategy[None] = gaps) -> list:
            return draw(st.lists(values | gaps, min_size=rows, max_size=rows))

        if kind == "int":
            series = pd.Series(cells(st.integers(-(2**63), 2**63 - 1)), dtype="int64")
        elif kind == "int_gaps":
            # CSV reads integers with gaps as float64: beyond 2**53 they would round.
            series = pd.Series(cells(st.integers(-(2**53), 2**53)), dtype="Int64")
        elif kind == "float":
            series = pd.Series(
                cells(st.floats(allow_nan=False, allow_infinity=False)), dtype="float64"
            )
        elif kind == "str":
            series = pd.Series(cells(csv_words), dtype="str")
        elif kind.startswith("bool"):
            series = pd.Series(cells(st.booleans()), dtype="boolean" if "gaps" in kind else "bool")
        else:
            series = pd.Series(pd.to_datetime(cells(instants), utc=True))
        columns[f"c{position}"] = series
    return pd.DataFrame(columns)


@st.composite
def any_tables(draw: st.DrawFn, max_rows: int = 15) -> pd.DataFrame:
    """Tables of any kind of column, nulls, infinities and extreme floats included."""
    rows = draw(st.integers(min_value=0, max_value=max_rows))
    count = draw(st.integers(min_value=1, max_value=5))
    columns: dict[str, object] = {}
    for position in range(count):
        kind = draw(st.sampled_from(["int", "float", "text", "category", "bool", "time"]))
        gaps = st.none()
        if kind == "int":
            values = draw(
                st.lists(st.integers(-(2**63), 2**63 - 1) | gaps, min_size=rows, max_size=rows)
            )
            column: object = pd.array(values, dtype="Int64")
        elif kind == "float":
            values = draw(
                st.lists(
                    st.floats(allow_nan=True, allow_infinity=True), min_size=rows, max_size=rows
                )
            )
            column = np.array(values, dtype="float64")
        elif kind in ("text", "category"):
            values = draw(st.lists(st.text(max_size=4) | gaps, min_size=rows, max_size=rows))
            column = pd.Categorical(values) if kind == "category" else pd.array(values, dtype="str")
        elif kind == "bool":
            values = draw(st.lists(st.booleans() | gaps, min_size=rows, max_size=rows))
            column = pd.array(values, dtype="boolean")
        else:
            values = draw(st.lists(instants | gaps, min_size=rows, max_size=rows))
            column = pd.to_datetime(values, utc=True)
        columns[f"c{position}"] = column
    return pd.DataFrame(columns, index=range(rows))
