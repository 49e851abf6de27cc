"""The current window, read once per score: finite values or category counts per column."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.monitoring.frames import numeric_values
from shipyard.monitoring.reference import Reference, Representation, category_counts

__all__ = ["CurrentColumn", "read_window"]


@dataclass(frozen=True, eq=False)
class CurrentColumn:
    """One column of the current window, cleaned as the reference was.

    Numeric: ``values`` are the finite values in window order. Categorical: ``values``
    are the distinct non-null values (JSON scalars) and ``counts`` their counts.
    """

    name: str
    representation: Representation
    values: np.ndarray
    counts: np.ndarray | None = None
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0

    @property
    def n(self) -> int:
        """Number of finite, non-null values."""
        return len(self.values) if self.counts is None else int(self.counts.sum())

    @property
    def inf_count(self) -> int:
        """Number of ±inf values dropped."""
        return self.posinf_count + self.neginf_count

    @cached_property
    def sorted(self) -> np.ndarray:
        """The finite values, sorted (numeric only)."""
        return np.sort(self.values)

    @cached_property
    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values and their counts."""
        if self.counts is not None:
            return self.values, self.counts
        ordered = self.sorted
        if len(ordered) == 0:
            return ordered, np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        return ordered[starts], np.diff(np.append(starts, len(ordered)))


def read_window(
    frame: pd.DataFrame, reference: Reference, names: Sequence[str]
) -> Iterator[CurrentColumn]:
    """The named columns of ``frame`` in the representation the reference chose, in order.

    Each column is read when the iterator reaches it (a float column without NaN or ±inf
    is a view of the frame, not a copy), so a caller that keeps only its results holds
    one column's arrays at a time.
    """
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(
            f"The current data has no column {', '.join(map(repr, missing))}.",
            hint="Score the same columns the detector was fitted on.",
        )
    return (_read_column(frame[name], name, reference[name].representation) for name in names)


def _read_column(series: pd.Series, name: str, representation: Representation) -> CurrentColumn:
    if representation == "categorical":
        keys, counts = category_counts(series)
        return CurrentColumn(name, "categorical", keys, counts, nan_count=int(series.isna().sum()))
    raw = numeric_values(series, name)
    finite = np.isfinite(raw)
    if finite.all():
        return CurrentColumn(name, "numeric", raw)
    nans = int(np.count_nonzero(np.isnan(raw)))
    posinf = int(np.count_nonzero(raw == np.inf))
    return CurrentColumn(
        name,
        "numeric",
        raw[finite],
        nan_count=nans,
        posinf_count=posinf,
        neginf_count=len(raw) - int(np.count_nonzero(finite)) - nans - posinf,
    )
