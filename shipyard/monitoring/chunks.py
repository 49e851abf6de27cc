"""Mergeable per-chunk summaries of a window, so drift scales past one pass over one frame.

A window is summarised a chunk at a time (a Parquet row group, a log file, a Spark
partition); summaries :func:`merge_summaries` in any order and grouping, and
:func:`~shipyard.monitoring.chunk_scores.score_summary` turns the merged summary into
the same :class:`~shipyard.monitoring.results.DatasetDrift` that ``detector.score`` gives
on the whole window. Stored summaries (:meth:`WindowSummary.to_json`,
:class:`~shipyard.monitoring.chunk_store.SummaryStore`) let a long window be recomputed
without rereading raw rows. The plan lives in :mod:`~shipyard.monitoring.chunk_plan`.

    plan = SummaryPlan.for_detectors([detector])          # what each column must keep
    summary = summarize_batches(plan, parquet_batches)    # merge of per-chunk summaries
    drift = score_summary(detector, summary)              # == detector.score(whole window)

What a column keeps depends on the methods that test it, chosen so that every score
equals the single pass (exactly for counts and tests, to rounding for sums):

==========================================  ===============================================
method (column)                             per-chunk summary
==========================================  ===============================================
psi, kl, jensenshannon (continuous,         counts in the reference's quantile bins
``binning="quantile"``)
ks                                          counts in the 2k+1 cells around the reference's
                                            k distinct values (below, at, between each):
                                            the KS statistic is attained at those points,
                                            so D and its p-value are exact
chisquare, z, ``binning="evidently"``,      the exact map of current values to counts
and every discrete or categorical column    (sorted runs for numbers, first-seen order
                                            for categories)
wasserstein, auto (continuous column)       the value map up to ``value_limit`` distinct
                                            values, and cell counts with per-cell sums
==========================================  ===============================================

A discrete column's unseen values each get a bin, so each must be counted: its value
map is kept whatever its size. Wasserstein's integral needs the current order
statistics where the two CDFs cross between two reference points; past the limit, the
cells give it exactly everywhere else and bound it there (the result says so, see
:func:`~shipyard.monitoring.chunk_scores.wasserstein_from_cells`), in memory that
depends on the reference, not the window. Every column also keeps its NaN, ±inf and
out-of-reference-range counts, and what Evidently's column typing needs (``auto``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shipyard.errors import DataError
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.chunk_plan import VALUE_LIMIT, ColumnPlan, SummaryPlan, as_plan
from shipyard.monitoring.frames import FrameLike, as_frame, numeric_values
from shipyard.monitoring.reference import Representation, category_counts

__all__ = [
    "VALUE_LIMIT",
    "ColumnPlan",
    "ColumnSummary",
    "SummaryPlan",
    "WindowSummary",
    "as_plan",
    "bin_counts",
    "cell_counts",
    "cell_sums",
    "dropped_values",
    "empty_summary",
    "merge_columns",
    "merge_summaries",
    "summarize",
    "summarize_batches",
]

_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class ColumnSummary:
    """One column of one or more chunks, in the form its :class:`ColumnPlan` asked for.

    ``n`` counts finite, non-null values; ``below``/``above`` the numeric ones outside
    the reference's [min, max]. ``bins`` holds counts per bin set, ``cells`` the counts in
    the cells around the reference's values, ``sums`` per open cell the summed distances
    of its values to the cell's upper end (the top cell: to the last reference value),
    ``values``/``counts`` the value map (``None`` once dropped past the plan's limit).
    ``dtype`` is the pandas dtype the
    concatenated chunks would have; ``first_str``, ``last_str`` (first and last non-null
    value is a string; ``None`` when there is none) and ``all_bool`` are what
    Evidently's column typing reads from an ``object`` column.
    """

    name: str
    representation: Representation
    dtype: str
    reference: str = ""
    n: int = 0
    present: int = 0
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0
    below: int = 0
    above: int = 0
    bins: Mapping[str, np.ndarray] = field(default_factory=dict)
    cells: np.ndarray | None = None
    sums: np.ndarray | None = None
    values: np.ndarray | None = None
    counts: np.ndarray | None = None
    first_str: bool | None = None
    last_str: bool | None = None
    all_bool: bool = True
    value_limit: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (arrays as base64 little-endian bytes)."""
        values: Any = None
        if self.values is not None:
            values = _encode(self.values) if self.representation == "numeric" else list(self.values)
        return {
            "name": self.name,
            "representation": self.representation,
            "dtype": self.dtype,
            "reference": self.reference,
            "n": self.n,
            "present": self.present,
            "nan_count": self.nan_count,
            "posinf_count": self.posinf_count,
            "neginf_count": self.neginf_count,
            "below": self.below,
            "above": self.above,
            "bins": {key: _encode(counts) for key, counts in self.bins.items()},
            "cells": None if self.cells is None else _encode(self.cells),
            "sums": None if self.sums is None else _encode(self.sums),
            "values": values,
            "counts": None if self.counts is None else _encode(self.counts),
            "first_str": self.first_str,
            "last_str": self.last_str,
            "all_bool": self.all_bool,
            "value_limit": self.value_limit,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSummary:
        """Rebuild a column summary from :meth:`to_dict` output."""
        representation = data["representation"]
        values: np.ndarray | None = None
        if data.get("values") is not None:
            if representation == "numeric":
                values = _decode(data["values"]).astype(np.float64)
            else:
                values = np.array([*data["values"], None], dtype=object)[:-1]
        return cls(
            name=str(data["name"]),
            representation=representation,
            dtype=str(data["dtype"]),
            reference=str(data.get("reference", "")),
            n=int(data["n"]),
            present=int(data["present"]),
            nan_count=int(data["nan_count"]),
            posinf_count=int(data["posinf_count"]),
            neginf_count=int(data["neginf_count"]),
            below=int(data["below"]),
            above=int(data["above"]),
            bins={key: _decode(value) for key, value in data["bins"].items()},
            cells=None if data.get("cells") is None else _decode(data["cells"]),
            sums=None if data.get("sums") is None else _decode(data["sums"]),
            values=values,
            counts=None if data.get("counts") is None else _decode(data["counts"]),
            first_str=data.get("first_str"),
            last_str=data.get("last_str"),
            all_bool=bool(data.get("all_bool", True)),
            value_limit=int(data.get("value_limit", 0)),
        )


@dataclass(frozen=True, eq=False)
class WindowSummary:
    """The merged summary of a window's chunks: its row count and one summary per column."""

    plan: str
    rows: int
    columns: Mapping[str, ColumnSummary]

    def __getitem__(self, name: str) -> ColumnSummary:
        return self.columns[name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "format_version": _FORMAT_VERSION,
            "plan": self.plan,
            "rows": self.rows,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowSummary:
        """Rebuild a window summary from :meth:`to_dict` output."""
        version = data.get("format_version")
        if version != _FORMAT_VERSION:
            raise DataError(
                f"Window summary format {version} is not supported (expected {_FORMAT_VERSION}).",
                hint="Summarise the window again from its log.",
            )
        columns = [ColumnSummary.from_dict(item) for item in data["columns"]]
        return cls(str(data["plan"]), int(data["rows"]), {c.name: c for c in columns})

    def to_json(self) -> str:
        """Strict JSON text; :meth:`from_json` loads it back."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> WindowSummary:
        """Parse :meth:`to_json` output; anything else is a :class:`DataError` saying so."""
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"Not a stored window summary: {type(exc).__name__}: {exc}",
                hint="Delete the file and summarise its chunk again from the log.",
            ) from None


def summarize(
    plan: SummaryPlan, chunk: FrameLike, *, dropped: Collection[str] = ()
) -> WindowSummary:
    """Summarise one chunk of the window (a DataFrame or a dict of arrays) under ``plan``.

    ``dropped`` names columns whose merged value map is already past the plan's limit
    (see :func:`dropped_values`): their chunk summaries skip the map, which merging
    would drop anyway.
    """
    frame = _frame(plan, chunk)
    columns = {
        name: _summarize_column(column, frame[name], name in dropped)
        for name, column in plan.columns.items()
    }
    return WindowSummary(plan.digest, len(frame), columns)


def _frame(plan: SummaryPlan, chunk: FrameLike) -> pd.DataFrame:
    frame = as_frame(chunk)
    missing = [name for name in plan.columns if name not in frame.columns]
    if missing:
        raise DataError(
            f"The current data has no column {', '.join(map(repr, missing))}.",
            hint="Summarise the same columns the detectors were fitted on.",
        )
    return frame


def dropped_values(plan: SummaryPlan, summary: WindowSummary) -> frozenset[str]:
    """Columns of ``summary`` whose value map was dropped past the plan's limit."""
    return frozenset(
        name
        for name, column in summary.columns.items()
        if column.values is None and plan.columns[name].values
    )


def empty_summary(plan: SummaryPlan) -> WindowSummary:
    """The summary of a window without rows (the identity of :func:`merge_summaries`)."""
    frame = pd.DataFrame(
        {name: pd.Series([], dtype=_empty_dtype(p)) for name, p in plan.columns.items()}
    )
    return summarize(plan, frame)


def _empty_dtype(plan: ColumnPlan) -> str:
    return "float64" if plan.representation == "numeric" else "object"


def summarize_batches(
    fitted: SummaryPlan | DriftDetector | Iterable[DriftDetector],
    batches: Iterable[FrameLike],
) -> WindowSummary:
    """Summarise ``batches`` one at a time and merge them: memory of one batch plus summaries.

    Each column of a batch is summarised and merged before the next, so only one
    column's chunk summary exists beside the running total.
    """
    plan = as_plan(fitted)
    total = empty_summary(plan)
    for batch in batches:
        frame = _frame(plan, batch)
        dropped = dropped_values(plan, total)
        columns = dict(total.columns)
        for name, part in plan.columns.items():
            chunk = _summarize_column(part, frame[name], name in dropped)
            columns[name] = merge_columns(columns[name], chunk)
            del chunk
        total = WindowSummary(total.plan, total.rows + len(frame), columns)
    return total


def merge_summaries(first: WindowSummary, *others: WindowSummary) -> WindowSummary:
    """Merge summaries of disjoint chunks: the summary of their concatenation.

    Counts add up; value maps merge (numbers stay sorted, categories keep first-seen
    order, taking the arguments as the window's order). Only summaries made under one
    plan merge.
    """
    return reduce(_merge_two, others, first)


def _merge_two(a: WindowSummary, b: WindowSummary) -> WindowSummary:
    if a.plan != b.plan:
        raise DataError(
            f"Cannot merge window summaries made under different plans ({a.plan} and {b.plan}).",
            hint="Summaries merge only for the same reference and methods; summarise again.",
        )
    columns = {name: merge_columns(column, b.columns[name]) for name, column in a.columns.items()}
    return WindowSummary(a.plan, a.rows + b.rows, columns)


def merge_columns(a: ColumnSummary, b: ColumnSummary) -> ColumnSummary:
    """Merge one column's summaries of disjoint chunks (``a`` before ``b`` in the window)."""
    values = counts = None
    if a.values is not None and b.values is not None:
        assert a.counts is not None and b.counts is not None
        if a.representation == "numeric":
            values, counts = _merge_numeric(a.values, a.counts, b.values, b.counts)
        else:
            values, counts = _merge_categories(a.values, a.counts, b.values, b.counts)
        if a.value_limit and len(values) > a.value_limit:
            values = counts = None  # the cells and sums stand in from here on
    return ColumnSummary(
        name=a.name,
        representation=a.representation,
        dtype=_concatenated_dtype(a, b),
        reference=a.reference,
        n=a.n + b.n,
        present=a.present + b.present,
        nan_count=a.nan_count + b.nan_count,
        posinf_count=a.posinf_count + b.posinf_count,
        neginf_count=a.neginf_count + b.neginf_count,
        below=a.below + b.below,
        above=a.above + b.above,
        bins={key: counts_ + b.bins[key] for key, counts_ in a.bins.items()},
        cells=None if a.cells is None or b.cells is None else _add(a.cells, b.cells, a.n + b.n),
        sums=None if a.sums is None or b.sums is None else a.sums + b.sums,
        values=values,
        counts=counts,
        value_limit=a.value_limit,
        first_str=a.first_str if a.present else b.first_str,
        last_str=b.last_str if b.present else a.last_str,
        all_bool=a.all_bool and b.all_bool,
    )


def _concatenated_dtype(a: ColumnSummary, b: ColumnSummary) -> str:
    """The dtype ``pd.concat`` gives the two columns; an empty side does not count."""
    if a.dtype == b.dtype:
        return a.dtype
    if a.n + a.present + a.nan_count == 0:
        return b.dtype
    if b.n + b.present + b.nan_count == 0:
        return a.dtype
    typed = [pd.Series([], dtype=pd.api.types.pandas_dtype(d)) for d in (a.dtype, b.dtype)]
    return str(pd.concat(typed).dtype)


def _merge_numeric(
    a_values: np.ndarray, a_counts: np.ndarray, b_values: np.ndarray, b_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    values = np.concatenate((a_values, b_values))
    counts = np.concatenate((a_counts, b_counts)).astype(np.int64)
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    if len(values) == 0:
        return values, counts
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return values[starts], np.add.reduceat(counts, starts)


def _merge_categories(
    a_values: np.ndarray, a_counts: np.ndarray, b_values: np.ndarray, b_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    merged: dict[Any, int] = dict(zip(a_values.tolist(), a_counts.tolist(), strict=True))
    for key, count in zip(b_values.tolist(), b_counts.tolist(), strict=True):
        merged[key] = merged.get(key, 0) + count
    keys = np.array([*merged, None], dtype=object)[:-1]
    return keys, np.fromiter(merged.values(), dtype=np.int64, count=len(merged))


def _summarize_column(plan: ColumnPlan, series: pd.Series, dropped: bool) -> ColumnSummary:
    first_str, last_str, all_bool = _object_traits(series)
    if plan.representation == "categorical":
        keys, key_counts = category_counts(series)
        nans = int(series.isna().sum())
        return ColumnSummary(
            name=plan.name,
            representation="categorical",
            dtype=str(series.dtype),
            reference=plan.reference,
            n=int(key_counts.sum()),
            present=len(series) - nans,
            nan_count=nans,
            values=keys,
            counts=key_counts,
            first_str=first_str,
            last_str=last_str,
            all_bool=all_bool,
        )
    raw = numeric_values(series, plan.name)
    finite_mask = np.isfinite(raw)
    finite = raw[finite_mask]
    nans = int(np.count_nonzero(np.isnan(raw)))
    posinf = int(np.count_nonzero(raw == np.inf))
    values: np.ndarray | None = None
    counts: np.ndarray | None = None
    limit = 0 if plan.exact_values else plan.value_limit
    keep_values = plan.values and not (dropped and limit)
    if plan.cells is not None or keep_values:
        # Searching sorted values walks the reference's points in order: ~10x faster
        # than random probes into a large reference, and counts ignore order anyway.
        finite = np.sort(finite)
    cells = sums = None
    if plan.cells is not None:
        cells, sums = _cells(plan.cells, finite, plan.sums)
    if keep_values:
        values, distinct_counts = np.unique(finite, return_counts=True)
        counts = distinct_counts.astype(np.int64)
        if limit and len(values) > limit:
            values = counts = None
    return ColumnSummary(
        name=plan.name,
        representation="numeric",
        dtype=str(series.dtype),
        reference=plan.reference,
        n=len(finite),
        present=len(raw) - nans,
        nan_count=nans,
        posinf_count=posinf,
        neginf_count=len(raw) - len(finite) - nans - posinf,
        below=0 if plan.low is None else int(np.count_nonzero(finite < plan.low)),
        above=0 if plan.high is None else int(np.count_nonzero(finite > plan.high)),
        bins={key: bin_counts(edges, finite) for key, edges in plan.edges.items()},
        cells=cells,
        sums=sums,
        values=values,
        counts=counts,
        first_str=first_str,
        last_str=last_str,
        all_bool=all_bool,
        value_limit=limit,
    )


def bin_counts(
    edges: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Counts in the bins cut by interior ``edges`` (``edges[i-1] ≤ v < edges[i]``, outer open)."""
    index = np.searchsorted(edges, values, side="right")
    return _count(index, len(edges) + 1, weights)


def cell_counts(
    points: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Counts in the ``2k+1`` cells around ``k`` sorted points: below, at, between, …, above.

    Cell ``2i+1`` holds values equal to ``points[i]``, cell ``2i`` those strictly
    between ``points[i-1]`` and ``points[i]``.
    """
    left = np.searchsorted(points, values, side="left")
    at = np.zeros(len(values), dtype=bool)
    if len(points):
        at = points[np.minimum(left, len(points) - 1)] == values
    return _count(2 * left + at, 2 * len(points) + 1, weights)


def cell_sums(
    points: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per open cell (``k+1`` of them), the summed distances of its values to its upper end.

    Open cell ``j`` lies between ``points[j-1]`` and ``points[j]``; the top cell (above
    the last point) sums distances down to the last point instead. Distances, not raw
    values, so a sum keeps its precision however far the values lie from zero.
    """
    if len(points) == 0:
        return np.zeros(1)
    left = np.searchsorted(points, values, side="left")
    inside = np.minimum(left, len(points) - 1)
    open_ = (left == len(points)) | (points[inside] != values)
    distances = np.where(left < len(points), points[inside] - values, values - points[-1])
    weighted = distances if weights is None else distances * weights
    return np.bincount(left[open_], weights=weighted[open_], minlength=len(points) + 1)


def _cells(
    points: np.ndarray, values: np.ndarray, sums: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`cell_counts` and, if asked, :func:`cell_sums` from one search."""
    if len(points) == 0:
        return cell_counts(points, values), (np.zeros(1) if sums else None)
    left = np.searchsorted(points, values, side="left")
    inside = np.minimum(left, len(points) - 1)
    at = points[inside] == values
    counts = _narrow(np.bincount(2 * left + at, minlength=2 * len(points) + 1), len(values))
    if not sums:
        return counts, None
    open_ = ~at
    left, inside, values = left[open_], inside[open_], values[open_]
    distances = np.where(left < len(points), points[inside] - values, values - points[-1])
    return counts, np.bincount(left, weights=distances, minlength=len(points) + 1)


def _narrow(counts: np.ndarray, total: int) -> np.ndarray:
    """Counts as ``int32`` while their total fits (half the memory of a large reference's cells)."""
    return counts.astype(np.int32 if total < np.iinfo(np.int32).max else np.int64)


def _add(a: np.ndarray, b: np.ndarray, total: int) -> np.ndarray:
    """``a + b`` for counts adding up to ``total``, widened before ``int32`` could overflow."""
    dtype = np.int32 if total < np.iinfo(np.int32).max else np.int64
    return np.add(a, b, dtype=dtype)


def _count(index: np.ndarray, size: int, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.bincount(index, minlength=size).astype(np.int64)
    counts = np.zeros(size, dtype=np.int64)
    np.add.at(counts, index, weights)
    return counts


def _object_traits(series: pd.Series) -> tuple[bool | None, bool | None, bool]:
    """First/last non-null value is a string, and all are booleans.

    Strings are looked at in ``object`` columns only (Evidently types the others by
    dtype). "All booleans" must survive a merge with an empty or a boolean chunk, so it
    holds for those and fails for any other non-empty column.
    """
    if not ptypes.is_object_dtype(series.dtype):
        return None, None, bool(ptypes.is_bool_dtype(series.dtype) or series.count() == 0)
    present = series.dropna()
    if len(present) == 0:
        return None, None, True
    return (
        isinstance(present.iloc[0], str),
        isinstance(present.iloc[-1], str),
        ptypes.infer_dtype(present, skipna=True) == "boolean",
    )


def _encode(array: np.ndarray) -> dict[str, str]:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": little.dtype.str, "base64": base64.b64encode(little.tobytes()).decode()}


def _decode(data: Mapping[str, str]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data["base64"]), dtype=np.dtype(data["dtype"])).copy()
