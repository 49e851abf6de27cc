"""Logical column kinds and the lossless conversions between pandas encodings of them.

The same table reaches Shipyard in different encodings: an integer column with gaps is
``float64`` from CSV but ``Int64`` from Parquet, booleans with gaps are ``object`` from
CSV, strings may be ``object``, ``str`` or ``category``. Digests, profiles and schema
checks all look through the encoding to the *kind* of the values, defined here once.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

Kind = Literal["integer", "float", "boolean", "datetime", "string", "other"]

# Integral floats beyond this lose their identity as int64.
_INT64_SAFE = 2.0**63

SCHEMA_DTYPES: dict[Kind, str] = {
    "integer": "Int64",
    "float": "float64",
    "boolean": "boolean",
    "datetime": "datetime64[ns, UTC]",
    "string": "str",
}


def column_kind(series: pd.Series) -> Kind:
    """The logical kind of a column, decided by its dtype (object columns by their values)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = pd.Series(dtype.categories)
        return "string" if column_kind(categories) == "string" else "other"
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "integer"
    if ptypes.is_float_dtype(dtype):
        return "float"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if ptypes.is_object_dtype(dtype):
        inferred = ptypes.infer_dtype(series, skipna=True)
        if inferred == "string":
            return "string"
        if inferred == "boolean":
            return "boolean"
    return "other"


def schema_dtype(series: pd.Series) -> str:
    """The dtype a schema inferred from this column should require."""
    kind = column_kind(series)
    return SCHEMA_DTYPES[kind] if kind != "other" else str(series.dtype)


def is_integral(values: np.ndarray) -> bool:
    """Whether every non-NaN float is finite, whole and fits in int64."""
    present = values[~np.isnan(values)]
    return bool(np.all((np.abs(present) < _INT64_SAFE) & (np.trunc(present) == present)))


def to_utc(series: pd.Series, unit: str = "ns") -> pd.Series:
    """Datetimes in UTC at ``unit`` resolution; naive datetimes are taken to be UTC."""
    utc = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    return utc.dt.as_unit(unit)


def parse_iso_datetimes(series: pd.Series) -> pd.Series | None:
    """Parse a string column of ISO-8601 timestamps as UTC, or ``None`` if any value isn't one."""
    try:
        parsed = pd.to_datetime(series, format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        return None
    if parsed.isna().sum() != series.isna().sum():
        return None
    return to_utc(parsed)


def _target_dtype(expected: str) -> Any:
    try:
        return ptypes.pandas_dtype(expected)
    except TypeError:
        return None


def conform(series: pd.Series, expected: str) -> pd.Series:
    """Re-encode ``series`` as dtype ``expected`` when that loses nothing; else return it as is.

    This is what lets a CSV and a Parquet file of the same table pass the same schema:
    ``float64`` integers with gaps become ``Int64``, ``object`` booleans become
    ``boolean``, categoricals of strings become strings. Values that would change
    (1.5 into an integer, "x" into a number) are never coerced.
    """
    target = _target_dtype(expected)
    if target is None or series.dtype == target:
        return series
    kind = column_kind(series)
    try:
        numpy_no_nulls = isinstance(target, np.dtype) and target.kind in "biu"
        if series.isna().all() and (len(series) == 0 or not numpy_no_nulls):
            # No values to lose: an all-null column carries no dtype worth keeping (CSV
            # cannot tell an empty integer column from an empty text column).
            return series.astype(target)
        if ptypes.is_integer_dtype(target) and not ptypes.is_bool_dtype(target):
            if kind == "integer" or (
                kind == "float" and is_integral(series.to_numpy(dtype="float64", na_value=np.nan))
            ):
                return series.astype(target)
        elif (ptypes.is_float_dtype(target) and kind in ("integer", "float")) or (
            ptypes.is_bool_dtype(target) and kind == "boolean"
        ):
            return series.astype(target)
        elif isinstance(target, pd.StringDtype) and kind == "string":
            return series if isinstance(series.dtype, pd.StringDtype) else series.astype("str")
        elif isinstance(target, pd.DatetimeTZDtype) and kind == "datetime":
            return to_utc(series, target.unit).dt.tz_convert(target.tz)
        elif isinstance(target, np.dtype) and target.kind == "M" and kind == "datetime":
            if series.dt.tz is None:
                return series.astype(target)
        elif isinstance(target, pd.DatetimeTZDtype) and kind == "string":
            parsed = parse_iso_datetimes(series)
            if parsed is not None:
                return parsed.dt.as_unit(target.unit).dt.tz_convert(target.tz)
    except (ValueError, TypeError, OverflowError):
        # e.g. nulls into a non-nullable dtype: leave it for the dtype check to report.
        return series
    return series


def dtype_matches(series: pd.Series, expected: str) -> bool:
    """Whether a (conformed) column is encoded as ``expected``; any string storage counts."""
    if str(series.dtype) == expected:
        return True
    target = _target_dtype(expected)
    if target is None:
        return False
    if isinstance(target, pd.StringDtype):
        return isinstance(series.dtype, pd.StringDtype)
    return bool(series.dtype == target)


def unconvertible(series: pd.Series, expected: str, limit: int = 5) -> list[object]:
    """Up to ``limit`` distinct values of ``series`` that cannot be represented as ``expected``."""
    target = _target_dtype(expected)
    present = series.dropna()
    if target is None or present.empty:
        return []
    if ptypes.is_numeric_dtype(target) and not ptypes.is_bool_dtype(target):
        numbers = pd.to_numeric(present, errors="coerce")
        bad = present[numbers.isna()]
        if bad.empty and ptypes.is_integer_dtype(target):
            as_float = numbers.to_numpy(dtype="float64")
            bad = present[~np.isfinite(as_float) | (np.trunc(as_float) != as_float)]
    elif ptypes.is_bool_dtype(target):
        bad = present[~present.map(lambda value: isinstance(value, bool | np.bool_))]
    elif isinstance(target, pd.DatetimeTZDtype | np.dtype) and ptypes.is_datetime64_any_dtype(
        target
    ):
        bad = present[pd.to_datetime(present, errors="coerce", utc=True, format="mixed").isna()]
    elif isinstance(target, pd.StringDtype):
        bad = present[~present.map(lambda value: isinstance(value, str))]
    else:
        bad = present
    return list(pd.unique(bad.to_numpy(dtype=object))[:limit])
