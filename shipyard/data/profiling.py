"""Computing a :class:`~shipyard.data.profile.Profile` from a DataFrame, vectorised per column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipyard.data._dtypes import column_kind, to_utc
from shipyard.data.profile import (
    QUANTILES,
    CategoryCount,
    ColumnKind,
    ColumnProfile,
    Histogram,
    Profile,
    Quantiles,
)

__all__ = ["HISTOGRAM_BINS", "TOP_CATEGORIES", "profile_frame"]

HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20

_PROFILE_KINDS: dict[str, ColumnKind] = {
    "integer": "numeric",
    "float": "numeric",
    "boolean": "boolean",
    "datetime": "datetime",
    "string": "categorical",
    "other": "categorical",
}


def profile_frame(df: pd.DataFrame) -> Profile:
    """Profile every column of ``df``: counts, nulls, ranges, quantiles, top values, histogram."""
    columns = tuple(
        _profile_column(str(name), df.iloc[:, position]) for position, name in enumerate(df.columns)
    )
    return Profile(rows=len(df), columns=columns)


def _profile_column(name: str, series: pd.Series) -> ColumnProfile:
    kind = _PROFILE_KINDS[column_kind(series)]
    null_count = int(series.isna().sum())
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": str(series.dtype),
        "count": len(series) - null_count,
        "null_count": null_count,
        "null_fraction": null_count / len(series) if len(series) else 0.0,
    }
    if kind == "numeric":
        return ColumnProfile(**base, **_numeric_stats(series))
    if kind == "datetime":
        return ColumnProfile(**base, **_datetime_stats(series))
    return ColumnProfile(**base, **_category_stats(series))


def _numeric_stats(series: pd.Series) -> dict[str, Any]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    stats: dict[str, Any] = {
        "distinct": int(pd.unique(present).size),
        "inf_count": int(present.size - finite.size),
    }
    if finite.size == 0:
        return stats
    low, high = float(finite.min()), float(finite.max())
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.mean(finite))
        std = float(np.std(finite))
    stats.update(
        min=low,
        max=high,
        mean=mean if np.isfinite(mean) else None,
        std=std if np.isfinite(std) else None,
        quantiles=_quantiles(finite),
        histogram=_numeric_histogram(finite, low, high),
    )
    return stats


def _quantiles(finite: np.ndarray) -> Quantiles:
    probabilities = list(QUANTILES.values())
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.quantile(finite, probabilities)
    if not np.all(np.isfinite(values)):
        # Interpolating between values near ±1.8e308 overflows; pick data points instead.
        values = np.quantile(finite, probabilities, method="inverted_cdf")
    # Interpolation can round a hair outside the data; keep quantiles monotone and in range.
    values = np.clip(np.maximum.accumulate(values), finite.min(), finite.max())
    return Quantiles(**{key: float(value) for key, value in zip(QUANTILES, values, strict=True)})


def _numeric_histogram(finite: np.ndarray, low: float, high: float) -> Histogram:
    if low == high:
        return Histogram(counts=(int(finite.size),), edges=(low, high))
    if np.isfinite(high - low):
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    else:
        # The span overflows float64; halving is exact, so the end points stay exact.
        edges = 2 * np.linspace(low / 2, high / 2, HISTOGRAM_BINS + 1)
    edges[0], edges[-1] = low, high
    counts, _ = np.histogram(finite, bins=edges)
    return Histogram(
        counts=tuple(int(count) for count in counts),
        edges=tuple(float(edge) for edge in edges),
    )


def _datetime_stats(series: pd.Series) -> dict[str, Any]:
    present = series.dropna()
    stats: dict[str, Any] = {"distinct": int(present.nunique())}
    if not present.empty:
        utc = to_utc(present, present.dt.unit)
        stats.update(min=utc.min().isoformat(), max=utc.max().isoformat())
    return stats


def _category_stats(series: pd.Series) -> dict[str, Any]:
    present = series.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        present = present.astype(object)
    if column_kind(present) == "other":
        present = present.astype(str)
    # Counts in order of first appearance, then a stable sort: ties keep that order,
    # so the same data gives the same top list whatever its encoding.
    counts = present.value_counts(sort=False)
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    total = int(counts.sum())
    top = counts.iloc[:TOP_CATEGORIES]
    labels = tuple(str(value) for value in top.index)
    top_counts = tuple(int(count) for count in top.to_numpy())
    other = total - sum(top_counts)
    if total == 0:
        return {"distinct": 0}
    return {
        "distinct": len(counts),
        "top": tuple(
            CategoryCount(value=label, count=count, share=count / total)
            for label, count in zip(labels, top_counts, strict=True)
        ),
        "other_share": other / total if total else 0.0,
        "histogram": Histogram(counts=top_counts, labels=labels, other=other),
    }
