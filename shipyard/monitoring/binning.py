"""Bin edges and histograms, all numeric columns of a window at once.

Numeric columns with many distinct reference values are compared on bins; edges come
from the reference alone (equal-mass quantiles, fixed at ``fit``) or, in Evidently's
way, from reference and current together (Sturges' rule over their combined range,
recomputed per window). Columns with few distinct values, and categorical columns, are
compared value by value, with values never seen in the reference given their own bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ValueCounts",
    "align_values",
    "histograms",
    "quantile_edges",
    "reference_histogram",
    "sturges_edges",
]

# Index arrays built at once for a chunk of columns stay below this many elements.
_CHUNK_ELEMENTS = 1 << 23


def quantile_edges(values: np.ndarray, counts: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges splitting a weighted sorted sample into ``bins`` equal-mass bins.

    Each edge is a reference value and starts a bin, so ties never split and no
    reference bin is empty; repeated edges collapse, which can leave fewer bins. The
    outer bins are open, so current values beyond the reference range land in a bin.
    """
    cumulative = np.cumsum(counts)
    targets = cumulative[-1] * np.arange(1, bins) / bins
    # Each edge is the value after the one that completes a bin's mass, so a bin closes
    # with the quantile value it reaches, and no edge falls on the minimum.
    positions = np.searchsorted(cumulative, targets, side="left") + 1
    return np.unique(values[positions[positions < len(values)]])


def sturges_edges(size: int, low: float, high: float) -> np.ndarray:
    """The edges ``np.histogram_bin_edges(data, bins="sturges")`` returns for such data.

    Computed from the size and range alone (as NumPy does), so the combined
    reference + current edges need no concatenation of the two samples.
    """
    width = (high - low) / (np.log2(size) + 1.0)
    if low == high:
        low, high = low - 0.5, high + 0.5
    count = int(np.ceil((high - low) / width)) if width else 1
    return np.linspace(low, high, count + 1, endpoint=True, dtype=np.float64)


def reference_histogram(
    values: np.ndarray, cumulative: np.ndarray, interior: np.ndarray
) -> np.ndarray:
    """Counts of a weighted sorted sample in the bins cut by ``interior`` edges.

    Bin ``i`` holds values ``v`` with ``interior[i-1] ≤ v < interior[i]`` (outer bins
    open): the same rule as :func:`histograms`, and as ``np.histogram`` on full edges.
    """
    distinct_below = np.searchsorted(values, interior, side="left")
    below = np.where(distinct_below > 0, cumulative[distinct_below - 1], 0)
    return np.diff(np.concatenate(([0], below, cumulative[-1:])))


def histograms(
    columns: Sequence[np.ndarray],
    interiors: Sequence[np.ndarray],
    chunk_elements: int = _CHUNK_ELEMENTS,
) -> list[np.ndarray]:
    """Counts of each column's values in the bins cut by that column's interior edges.

    One ``np.searchsorted`` per column on its precomputed edges, then a single
    ``np.bincount`` per chunk of columns (about ``chunk_elements`` values) with each
    column's bins offset, so binning a window costs one vectorised pass over its values.
    """
    widths = [len(edges) + 1 for edges in interiors]
    results: list[np.ndarray] = []
    start = 0
    while start < len(columns):
        stop, elements = start, 0
        while stop < len(columns) and (stop == start or elements < chunk_elements):
            elements += len(columns[stop])
            stop += 1
        offsets = np.concatenate(([0], np.cumsum(widths[start:stop])))
        indices = np.concatenate(
            [
                np.searchsorted(interiors[i], columns[i], side="right") + offsets[i - start]
                for i in range(start, stop)
            ]
        )
        counts = np.bincount(indices, minlength=int(offsets[-1]))
        results.extend(np.split(counts, offsets[1:-1]))
        start = stop
    return results


@dataclass(frozen=True, eq=False)
class ValueCounts:
    """Reference and current counts over the union of their values.

    The first ``len(reference values)`` entries follow the reference's order; then come
    the values seen only now (``unseen`` of them, ``unseen_rows`` occurrences).
    """

    keys: np.ndarray
    reference: np.ndarray
    current: np.ndarray
    unseen: int
    unseen_rows: int


def align_values(
    reference_values: np.ndarray,
    reference_counts: np.ndarray,
    current_values: np.ndarray,
    current_counts: np.ndarray,
) -> ValueCounts:
    """Put current value counts on the reference's values, adding bins for unseen values."""
    if len(reference_values) == 0:
        position = np.full(len(current_values), -1)
    elif reference_values.dtype == np.float64 and current_values.dtype == np.float64:
        slot = np.minimum(
            np.searchsorted(reference_values, current_values), len(reference_values) - 1
        )
        position = np.where(reference_values[slot] == current_values, slot, -1)
    else:
        position = pd.Index(reference_values).get_indexer(current_values)
    seen = position >= 0
    current = np.zeros(len(reference_values), dtype=np.int64)
    np.add.at(current, position[seen], current_counts[seen])
    unseen_counts = current_counts[~seen]
    return ValueCounts(
        keys=np.concatenate((reference_values, current_values[~seen])),
        reference=np.concatenate((reference_counts, np.zeros(len(unseen_counts), np.int64))),
        current=np.concatenate((current, unseen_counts)),
        unseen=len(unseen_counts),
        unseen_rows=int(unseen_counts.sum()),
    )
