"""The current window, read once per score: finite values or category counts per column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.monitoring.frames import numeric_values
from shipyard.monitoring.reference import Reference, Representation, category_counts

__all__ = ["CurrentColumn", "read_window"]

# Numeric columns are converted in blocks of about this many values.
_BLOCK_ELEMENTS = 1 << 23


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
) -> dict[str, CurrentColumn]:
    """Read the named columns of ``frame`` in the representation the reference chose.

    Numeric columns are converted to ``float64`` a block of columns at a time, and
    their NaN and ±inf counts taken across the whole block at once.
    """
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(
            f"The current data has no column {', '.join(map(repr, missing))}.",
            hint="Score the same columns the detector was fitted on.",
        )
    window: dict[str, CurrentColumn] = {}
    numeric = [name for name in names if reference[name].representation == "numeric"]
    per_block = max(1, _BLOCK_ELEMENTS // max(len(frame), 1))
    for start in range(0, len(numeric), per_block):
        block_names = numeric[start : start + per_block]
        block = _numeric_block(frame, block_names)
        finite = np.isfinite(block)
        nans = np.isnan(block).sum(axis=0)
        posinf = (block == np.inf).sum(axis=0)
        neginf = len(block) - finite.sum(axis=0) - nans - posinf
        for j, name in enumerate(block_names):
            window[name] = CurrentColumn(
                name=name,
                representation="numeric",
                values=block[:, j][finite[:, j]],
                nan_count=int(nans[j]),
                posinf_count=int(posinf[j]),
                neginf_count=int(neginf[j]),
            )
    for name in names:
        if name in window:
            continue
        series = frame[name]
        keys, counts = category_counts(series)
        window[name] = CurrentColumn(
            name=name,
            representation="categorical",
            values=keys,
            counts=counts,
            nan_count=int(series.isna().sum()),
        )
    return {name: window[name] for name in names}


def _numeric_block(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    try:
        return frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        # Name the offending column.
        return np.column_stack([numeric_values(frame[name], name) for name in names])
