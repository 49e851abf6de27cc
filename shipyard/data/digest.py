"""A content digest of a table that ignores how the table happened to be encoded.

Identity of a dataset is its column names (in order), its rows (in order) and the
*values* in them — not the file format, the integer width, or whether pandas chose
``float64`` or ``Int64`` for an integer column with gaps. Each column is brought to a
canonical encoding, hashed row by row with :func:`pandas.util.hash_pandas_object`
(vectorised, 64 bits per value), and the per-column hash arrays are fed into SHA-256
after a header naming the columns, their kinds and the row count.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
from pandas.util import hash_pandas_object

from shipyard.data._dtypes import column_kind, is_integral, to_utc

__all__ = ["dataset_digest"]

# Bump when the canonical encoding changes, so old and new digests never collide.
_DIGEST_VERSION = 1


def dataset_digest(df: pd.DataFrame) -> str:
    """Hex SHA-256 of the table's column names, order, rows and values.

    Equal for the same table however it was stored: integers of any width and integral
    floats hash as 64-bit integers (so ``1`` and ``1.0`` are the same value), other
    floats as ``float64``, strings the same whether ``object``, ``str`` or
    ``category``, booleans the same with or without gaps, datetimes as UTC nanoseconds
    (naive ones taken as UTC), and a column holding only nulls the same whatever its
    dtype. The index is ignored; reordering rows or columns changes the digest.
    """
    kinds: list[str] = []
    hashes: list[np.ndarray] = []
    for position in range(df.shape[1]):
        kind, values = _canonical(df.iloc[:, position])
        kinds.append(kind)
        if values is not None:
            hashes.append(hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64))
    header = {
        "version": _DIGEST_VERSION,
        "rows": len(df),
        "columns": [[str(name), kind] for name, kind in zip(df.columns, kinds, strict=True)],
    }
    digest = hashlib.sha256(json.dumps(header, separators=(",", ":")).encode())
    for column_hashes in hashes:
        digest.update(np.ascontiguousarray(column_hashes).data)
    return digest.hexdigest()


def _canonical(series: pd.Series) -> tuple[str, pd.Series | None]:
    """The kind recorded in the header, and the canonically encoded values to hash."""
    if len(series) == 0 or series.isna().all():
        return "null", None
    if isinstance(series.dtype, pd.CategoricalDtype) and column_kind(series) != "string":
        # Categoricals of numbers, dates ...: hash the values they stand for.
        return _canonical(series.astype(object).infer_objects())
    kind = column_kind(series)
    if kind == "float":
        floats = series.to_numpy(dtype="float64", na_value=np.nan)
        if is_integral(floats):
            return "integer", pd.Series(floats).astype("Int64")
        return "float", pd.Series(floats)
    if kind == "integer":
        try:
            return "integer", series.astype("Int64")
        except (OverflowError, TypeError, ValueError):
            # uint64 beyond int64: hash the raw unsigned values.
            return "unsigned", series
    if kind == "boolean":
        return "boolean", series.astype("boolean")
    if kind == "datetime":
        try:
            return "datetime", to_utc(series, "ns")
        except (OverflowError, ValueError):
            # Outside the nanosecond range (before 1677 or after 2262).
            return "datetime-us", to_utc(series, "us")
    if kind == "string":
        # Categoricals hash by their category values, equal to the plain strings.
        return "string", series
    return "other", series.astype(str)
