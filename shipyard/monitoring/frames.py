"""Inputs to drift detection: frames or dicts of arrays, column values, column kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pandas.api import types as ptypes

from shipyard.errors import DataError

__all__ = ["EvidentlyKind", "FrameLike", "as_frame", "evidently_kind", "json_key"]

if TYPE_CHECKING:
    from shipyard.monitoring.parquet_columns import ParquetColumns

FrameLike: TypeAlias = "pd.DataFrame | Mapping[str, ArrayLike] | ParquetColumns"
EvidentlyKind = Literal["numerical", "categorical", "text", "datetime", "unknown"]

# evidently/core/datasets.py: integer columns with at most this many distinct values
# are categorical.
INTEGER_CARDINALITY_LIMIT = 10


def as_frame(data: FrameLike) -> pd.DataFrame:
    """A DataFrame view of a frame or a mapping of column name to 1-D array.

    A :class:`~shipyard.monitoring.parquet_columns.ParquetColumns` passes through as it
    is: detectors use only a frame's ``columns``, its length and one column at a time,
    which it provides without reading the whole file.
    """
    from shipyard.monitoring.parquet_columns import ParquetColumns

    if isinstance(data, ParquetColumns):
        return cast(pd.DataFrame, data)
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame({str(name): np.asarray(values) for name, values in data.items()})
    raise DataError(
        f"Drift detection takes a pandas DataFrame or a dict of arrays, not {type(data).__name__}.",
        hint="Pass `frame` or `{name: np.ndarray}`.",
    )


def numeric_values(series: pd.Series, name: str) -> np.ndarray:
    """A column as ``float64`` with NaN for missing values, or a DataError saying why not."""
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"Column {name!r} should hold numbers (as in the reference) but holds "
            f"{series.dtype} values: {exc}",
            hint="Cast the column to the reference's type, or fit on matching data.",
        ) from exc


def json_key(value: Any) -> str | int | float | bool:
    """A category value as the JSON scalar it is stored as."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def evidently_kind(series: pd.Series) -> EvidentlyKind:
    """The column type Evidently 0.7 infers, from the *current* data as it does.

    Mirrors ``infer_column_type`` in ``evidently/core/datasets.py`` (0.7.23): floats are
    numerical; integers are categorical up to 10 distinct values; strings are text when
    more than half the non-null values are distinct, else categorical; ``bool`` and
    ``category`` are categorical.

    One deliberate difference: Evidently returns *unknown* (and silently skips the
    column) for pandas' nullable ``Int64``/``Float64``/``boolean`` dtypes, unsigned
    integers and ``object`` columns of booleans; Shipyard types them like ``int64``,
    ``float64`` and ``bool``.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_bool_dtype(dtype):
        return "categorical"
    if ptypes.is_float_dtype(dtype):
        return "numerical"
    if ptypes.is_integer_dtype(dtype):
        small = series.nunique() <= INTEGER_CARDINALITY_LIMIT
        return "categorical" if small else "numerical"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype) or ptypes.is_object_dtype(dtype):
        present = series.dropna()
        if len(present) == 0:
            return "unknown"
        if isinstance(present.iloc[0], str) and isinstance(present.iloc[-1], str):
            return "text" if series.nunique() > series.count() * 0.5 else "categorical"
        if ptypes.infer_dtype(present, skipna=True) == "boolean":
            return "categorical"
    return "unknown"
