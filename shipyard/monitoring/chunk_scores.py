"""Drift scores from a merged :class:`~shipyard.monitoring.chunks.WindowSummary`.

:func:`score_summary` gives, for any built-in detector, the :class:`DatasetDrift` that
``detector.score`` gives on the whole window: the same tests on the same counts. KS
reads its statistic off the cell counts around the reference's values (the two
empirical CDFs differ most at one of those points) and its p-value from the same
SciPy routine ``ks_2samp`` uses; Wasserstein integrates the two CDFs over the value
maps, or, past the plan's value limit, over the cells (bounded, and marked
approximate). :mod:`shipyard.monitoring.engines` puts this behind ``monitoring.engine``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shipyard.errors import ConfigError, DataError
from shipyard.monitoring.base import DriftDetector, missing_values, result, unscored
from shipyard.monitoring.binning import align_values, reference_histogram, sturges_edges
from shipyard.monitoring.chunk_plan import bins_key, fingerprint
from shipyard.monitoring.chunks import (
    ColumnSummary,
    WindowSummary,
    bin_counts,
    cell_counts,
)
from shipyard.monitoring.detectors import (
    ChiSquareDetector,
    KSDetector,
    WassersteinDetector,
    ZTestDetector,
    chi_square_result,
    z_test_result,
)
from shipyard.monitoring.evidently_auto import (
    AutoDriftDetector,
    choose_test,
    jensen_shannon_result,
    untestable_reason,
)
from shipyard.monitoring.frames import INTEGER_CARDINALITY_LIMIT, EvidentlyKind
from shipyard.monitoring.histogram_detectors import HistogramDetector
from shipyard.monitoring.reference import ColumnReference
from shipyard.monitoring.results import DatasetDrift, DriftResult, Kind
from shipyard.monitoring.window import CurrentColumn

__all__ = ["ks_from_cells", "score_summary", "wasserstein_from_cells", "weighted_wasserstein"]

_FEW_DISTINCT = 5  # evidently_auto: "numeric with more than 5 distinct values"
_KS_EXACT_MAX = 10_000  # scipy.stats.ks_2samp: mode "auto" is exact up to this size


def score_summary(detector: DriftDetector, summary: WindowSummary) -> DatasetDrift:
    """Score a merged window summary with a fitted ``detector``: equal to ``detector.score``."""
    if not hasattr(detector, "reference_"):
        raise RuntimeError(f"{type(detector).__name__} is not fitted: call fit(reference) first.")
    missing = [name for name in detector.columns_ if name not in summary.columns]
    if missing:
        raise DataError(
            f"The window summary has no column {', '.join(map(repr, missing))}.",
            hint="Summarise the window under SummaryPlan.for_detectors([this detector]).",
        )
    stale = [
        name
        for name in detector.columns_
        if summary[name].reference != fingerprint(detector.reference_[name])
    ]
    if stale:
        raise DataError(
            f"The window summary of {', '.join(map(repr, stale))} was made against another "
            "reference than this detector's.",
            hint="Summarise the window under SummaryPlan.for_detectors() of this detector.",
        )
    results: list[DriftResult] = []
    skipped: dict[str, str] = {}
    for name in detector.columns_:
        reference, column = detector.reference_[name], summary[name]
        if isinstance(detector, AutoDriftDetector):
            scored = _auto(reference, column)
            if isinstance(scored, str):
                skipped[name] = scored
                continue
            results.append(scored)
            continue
        note = missing_values(reference, _counted(column))
        if note:
            results.append(
                unscored(detector.method, reference, _counted(column), detector.threshold, note)
            )
        else:
            results.append(_score_column(detector, reference, column))
    return DatasetDrift(detector.method, tuple(results), detector.drift_share, skipped)


def _score_column(
    detector: DriftDetector, reference: ColumnReference, column: ColumnSummary
) -> DriftResult:
    if isinstance(detector, HistogramDetector):
        return _histogram(detector, reference, column)
    if isinstance(detector, KSDetector):
        return _ks(reference, column, detector.threshold)
    if isinstance(detector, WassersteinDetector):
        return _wasserstein(reference, column, detector.threshold)
    if isinstance(detector, ChiSquareDetector):
        return chi_square_result(reference, _weighted(column), detector.threshold)
    if isinstance(detector, ZTestDetector):
        return z_test_result(reference, _weighted(column), detector.threshold)
    raise ConfigError(
        f"The chunked engine cannot score {type(detector).__name__} (method {detector.method!r}).",
        hint="Use a built-in method, or monitoring.engine: duckdb.",
    )


def _histogram(
    detector: HistogramDetector, reference: ColumnReference, column: ColumnSummary
) -> DriftResult:
    if reference.discrete:
        return detector._score_column(reference, _weighted(column))
    if detector.binning == "quantile":
        edges = detector.edges_[reference.name]
        current_counts = _need(column.bins.get(bins_key(edges)), column, "quantile bin counts")
        reference_counts = detector.reference_histograms_[reference.name]
    else:  # Sturges' rule over both sides' range and size, as HistogramDetector._interior
        values, counts = _value_map(column)
        low = min(float(reference.values[0]), float(values[0]))
        high = max(float(reference.values[-1]), float(values[-1]))
        interior = sturges_edges(reference.n + column.n, low, high)[1:-1]
        current_counts = bin_counts(interior, values, counts)
        reference_counts = reference_histogram(reference.values, reference.cumulative, interior)
    score, band = detector._compare(reference_counts, current_counts)
    return result(
        detector.method,
        reference,
        _counted(column),
        score=score,
        threshold=detector.threshold,
        drifted=score >= detector.threshold,
        band=band,
        kind="numeric",
        out_of_range=column.below + column.above,
    )


def ks_from_cells(reference: ColumnReference, cells: np.ndarray) -> tuple[float, float]:
    """Two-sided KS ``(statistic, p_value)`` from the current counts in the reference's cells.

    Between two reference values the reference CDF is flat and the current one rises,
    so ``F_ref − F_cur`` is largest at a reference value and smallest just before the
    next one: the candidates below are exactly the extremes ``ks_2samp`` finds over the
    pooled sample, computed with the same divisions, and the p-value comes from the
    same routines (exact up to 10,000 values a side, else Smirnov's asymptotic).
    """
    n1 = int(reference.counts.sum(dtype=np.int64))
    n2 = int(cells.sum())
    reference_cdf = np.cumsum(reference.counts, dtype=np.int64) / n1
    running = np.cumsum(cells)
    at_points = reference_cdf - running[1::2] / n2
    before_next = (reference_cdf - running[2::2] / n2)[cells[2::2] > 0]
    below = [0.0 - running[0] / n2] if cells[0] > 0 else []
    differences = np.concatenate((at_points, before_next, below))
    smallest = float(np.clip(-differences.min(), 0, 1))
    largest = float(differences.max())
    return _ks_p_value(n1, n2, smallest if smallest > largest else largest)


def _ks_p_value(n1: int, n2: int, d: float) -> tuple[float, float]:
    """``(D, p)`` as ``scipy.stats.ks_2samp`` (mode ``auto``) returns them for D = ``d``.

    The exact routine also snaps D to its lattice of multiples of 1/lcm(n1, n2).
    """
    prob = -np.inf
    if max(n1, n2) <= _KS_EXACT_MAX:
        # SciPy's own exact routine, so the p-value is ks_2samp's to the last bit.
        from scipy.stats._stats_py import _attempt_exact_2kssamp

        success, exact_d, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
        d = float(exact_d)  # ks_2samp keeps the snapped D even when it falls back
        if not success:
            prob = -np.inf
    if prob == -np.inf:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        from scipy.stats import kstwo  # on first use: scipy.stats costs ~50 MiB at import

        prob = kstwo.sf(d, np.round(m * n / (m + n)))
    return d, float(np.clip(prob, 0, 1))


def _ks(reference: ColumnReference, column: ColumnSummary, threshold: float) -> DriftResult:
    cells = _need(column.cells, column, "KS cell counts")
    statistic, p_value = ks_from_cells(reference, cells)
    return result(
        "ks",
        reference,
        _counted(column),
        score=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=p_value <= threshold,
        kind="numeric",
        out_of_range=column.below + column.above,
    )


def weighted_wasserstein(
    u_values: np.ndarray, u_counts: np.ndarray, v_values: np.ndarray, v_counts: np.ndarray
) -> float:
    """∫|F_u − F_v| between two sorted weighted samples (distinct values and counts)."""
    support = np.union1d(u_values, v_values)
    u_cumulative = np.concatenate(([0], np.cumsum(u_counts, dtype=np.int64)))
    v_cumulative = np.concatenate(([0], np.cumsum(v_counts, dtype=np.int64)))
    u_cdf = u_cumulative[np.searchsorted(u_values, support[:-1], side="right")] / u_cumulative[-1]
    v_cdf = v_cumulative[np.searchsorted(v_values, support[:-1], side="right")] / v_cumulative[-1]
    return float(np.sum(np.abs(u_cdf - v_cdf) * np.diff(support)))


def wasserstein_from_cells(
    reference: ColumnReference, cells: np.ndarray, sums: np.ndarray
) -> tuple[float, float]:
    """∫|F_ref − F_cur| from cell counts and sums: ``(estimate, largest error)``.

    Between two reference values F_ref is flat, so over a cell where F_cur stays on
    one side of it the integral is exact from the cell's count and summed distances.
    Where F_cur crosses F_ref inside a cell, the crossing point is an order statistic
    the summary no longer has: the integral lies between |∫(F_cur − F_ref)| and the
    cell's width times the larger gap (the error returned is the sum of each cell's
    distance to the far end of its range). The estimate spreads the cell's values
    evenly around their mean (known from the sum), clipped to that range; a cell
    holding one value is then exact.
    """
    n = int(reference.counts.sum(dtype=np.int64))
    m = int(cells.sum())
    points = reference.values
    inner = cells[0::2]  # open cells: below, between each pair of points, above
    through = np.cumsum(cells)
    before = np.concatenate(([0], through[1::2]))  # current values before each open cell
    f_ref = np.cumsum(reference.counts, dtype=np.int64)[:-1] / n  # interior cells' F_ref
    width = np.diff(points)
    # Interior cell j (1 … k−1): ∫F_cur = (before·width + Σ(upper − x)) / m.
    start = before[1:-1] / m
    end = (before[1:-1] + inner[1:-1]) / m
    signed = (before[1:-1] * width + sums[1:-1]) / m - f_ref * width
    above = start >= f_ref
    below = end <= f_ref
    crossing = ~(above | below)
    low = np.abs(signed)
    high = np.where(
        crossing,
        np.minimum(
            width * np.maximum(end - f_ref, f_ref - start),
            np.minimum(signed + 2 * (f_ref - start) * width, -signed + 2 * (end - f_ref) * width),
        ),
        low,
    )
    high = np.maximum(high, low)
    # A crossing cell holding one value knows where it is (its distance is the sum).
    single = crossing & (inner[1:-1] == 1)
    exact = (f_ref - start) * (width - sums[1:-1]) + (end - f_ref) * sums[1:-1]
    low = np.where(single, exact, low)
    high = np.where(single, exact, high)
    middle = low.copy()
    spread = np.flatnonzero(crossing & ~single)
    if len(spread):
        modelled = _evenly_spread(
            points[spread],
            points[spread + 1],
            inner[1:-1][spread],
            sums[1:-1][spread],
            before[1:-1][spread],
            f_ref[spread],
            m,
        )
        middle[spread] = np.clip(modelled, low[spread], high[spread])
    outer = (sums[0] + sums[-1]) / m  # below the first point F_ref = 0, above the last 1
    error = np.maximum(middle - low, high - middle)
    return outer + float(np.sum(middle)), float(np.sum(error))


def _evenly_spread(
    lower: np.ndarray,
    upper: np.ndarray,
    counts: np.ndarray,
    distances: np.ndarray,
    before: np.ndarray,
    f_ref: np.ndarray,
    m: int,
) -> np.ndarray:
    """∫|F_cur − F_ref| over each cell, its values evenly spaced around their mean.

    The spacing is as wide as the cell allows around the mean, ``R − Σ(R − x)/c``.
    """
    counts = counts.astype(np.int64)
    mean = upper - distances / counts
    step = 2 * np.minimum(mean - lower, upper - mean) / counts
    first = mean - (counts - 1) / 2 * step
    last = mean + (counts - 1) / 2 * step
    # Level before the first value, then after each value (spaced ``step`` apart, the
    # last one running to the upper end).
    total = np.abs(before / m - f_ref) * (first - lower)
    cell = np.repeat(np.arange(len(counts)), counts)
    index = np.arange(len(cell)) - np.repeat(np.cumsum(counts) - counts, counts)
    level = np.abs((before[cell] + index + 1) / m - f_ref[cell])
    span = np.where(index == counts[cell] - 1, (upper - last)[cell], step[cell])
    return total + np.bincount(cell, weights=level * span, minlength=len(counts))


def _wasserstein(
    reference: ColumnReference, column: ColumnSummary, threshold: float
) -> DriftResult:
    scale = max(float(reference.std or 0.0), 0.001)
    error = 0.0
    if column.values is not None:
        values, counts = _value_map(column)
        distance = weighted_wasserstein(reference.values, reference.counts, values, counts)
    else:
        cells = _need(column.cells, column, "Wasserstein cell counts")
        sums = _need(column.sums, column, "Wasserstein cell sums")
        distance, error = wasserstein_from_cells(reference, cells, sums)
    score = distance / scale
    scored = result(
        "wasserstein",
        reference,
        _counted(column),
        score=score,
        threshold=threshold,
        drifted=score >= threshold,
        kind="numeric",
        out_of_range=column.below + column.above,
    )
    if column.values is not None:
        return scored
    return replace(
        scored,
        approximate=True,
        note=f"from cell sums (over {column.value_limit} distinct values in the window): "
        f"within ±{error / scale:.2g} of the exact score",
    )


def _auto(reference: ColumnReference, column: ColumnSummary) -> DriftResult | str:
    """``AutoDriftDetector``'s column test on a summary, or why the column is skipped."""
    kind = _evidently_kind(column)
    reason = untestable_reason(kind, reference)
    if reason:
        return reason
    tested_as: Kind = "numeric" if kind == "numerical" else "categorical"
    test, threshold = choose_test(kind, reference.n, _distinct(reference, column))
    counted = _counted(column)
    note = missing_values(reference, counted)
    if note:
        return unscored(test, reference, counted, threshold, note)
    if test == "ks":
        if column.cells is None:
            values, counts = _value_map(column)
            column = replace(column, cells=cell_counts(reference.values, values, counts))
        return _ks(reference, column, threshold)
    if test == "wasserstein":
        return _wasserstein(reference, column, threshold)
    current = _weighted(column)
    if test == "chisquare":
        return chi_square_result(reference, current, threshold, tested_as)
    if test == "z":
        return z_test_result(reference, current, threshold, tested_as)
    return jensen_shannon_result(reference, current, threshold, tested_as)


def _evidently_kind(column: ColumnSummary) -> EvidentlyKind:
    """``frames.evidently_kind`` of the concatenated window, from the summary's traits."""
    dtype = pd.api.types.pandas_dtype(column.dtype)
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_bool_dtype(dtype):
        return "categorical"
    if ptypes.is_float_dtype(dtype):
        return "numerical"
    if ptypes.is_integer_dtype(dtype):
        if column.values is None:  # dropped past the plan's limit: far more than 10 values
            return "numerical"
        return "categorical" if len(column.values) <= INTEGER_CARDINALITY_LIMIT else "numerical"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype) or ptypes.is_object_dtype(dtype):
        if column.present == 0:
            return "unknown"
        strings = column.first_str and column.last_str
        if isinstance(dtype, pd.StringDtype):
            strings = True
        if strings:
            distinct = 0 if column.values is None else len(column.values)
            return "text" if distinct > column.present * 0.5 else "categorical"
        if column.all_bool:
            return "categorical"
    return "unknown"


def _distinct(reference: ColumnReference, column: ColumnSummary) -> int:
    if reference.distinct > _FEW_DISTINCT:
        return reference.distinct
    values, counts = _value_map(column)
    if len(values) > _FEW_DISTINCT:
        return len(values)
    return len(align_values(reference.values, reference.counts, values, counts).keys)


def _value_map(column: ColumnSummary) -> tuple[np.ndarray, np.ndarray]:
    values = _need(column.values, column, "the value map")
    assert column.counts is not None
    return values, column.counts


def _need(part: np.ndarray | None, column: ColumnSummary, what: str) -> np.ndarray:
    if part is None:
        raise DataError(
            f"The window summary of column {column.name!r} lacks {what}.",
            hint="Summarise the window under SummaryPlan.for_detectors() of the detectors "
            "that score it.",
        )
    return part


def _weighted(column: ColumnSummary) -> CurrentColumn:
    """The column as a ``CurrentColumn`` of distinct values and counts (value map)."""
    values, counts = _value_map(column)
    return CurrentColumn(
        column.name,
        column.representation,
        values,
        counts,
        nan_count=column.nan_count,
        posinf_count=column.posinf_count,
        neginf_count=column.neginf_count,
    )


def _counted(column: ColumnSummary) -> CurrentColumn:
    """A ``CurrentColumn`` carrying only the counts a result reports (n, NaN, ±inf).

    Its one value stands for all ``n``: used only where a result reads the counts.
    """
    return CurrentColumn(
        column.name,
        column.representation,
        np.zeros(1),
        np.array([column.n], dtype=np.int64),
        nan_count=column.nan_count,
        posinf_count=column.posinf_count,
        neginf_count=column.neginf_count,
    )
