"""Detectors that test samples and value counts: KS, Wasserstein, chi-square, Z-test.

KS and Wasserstein apply to numeric columns; chi-square and the Z-test to discrete ones
(categorical, or numeric with ≤ 20 distinct reference values). Each column test is
also a function here, reused by the Evidently-compatible mode; each reproduces a file
of ``evidently/legacy/calculations/stattests/`` (0.7.23), named in its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.monitoring import statistics as st
from shipyard.monitoring.base import ThresholdDetector, out_of_range, result
from shipyard.monitoring.binning import align_values
from shipyard.monitoring.reference import ColumnReference
from shipyard.monitoring.results import DriftResult, Kind
from shipyard.monitoring.window import CurrentColumn

__all__ = [
    "ChiSquareDetector",
    "KSDetector",
    "WassersteinDetector",
    "ZTestDetector",
    "chi_square_result",
    "ks_result",
    "wasserstein_result",
    "z_test_result",
]


def ks_result(reference: ColumnReference, current: CurrentColumn, threshold: float) -> DriftResult:
    """Two-sample KS (``scipy.stats.ks_2samp``); drift when p ≤ threshold (``ks_stattest.py``)."""
    statistic, p_value = st.ks_two_sample(reference.sample, current.values)
    return result(
        "ks",
        reference,
        current,
        score=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=p_value <= threshold,
        kind="numeric",
        out_of_range=out_of_range(reference, current),
    )


def wasserstein_result(
    reference: ColumnReference, current: CurrentColumn, threshold: float
) -> DriftResult:
    """Wasserstein / max(std_ref, 0.001); drift when ≥ threshold.

    Evidently: ``wasserstein_distance_norm.py`` (std with ``np.std``, ddof 0).
    """
    score = st.wasserstein_distance_norm(
        reference.values, current.sorted, reference.std or 0.0, reference.counts
    )
    return result(
        "wasserstein",
        reference,
        current,
        score=score,
        threshold=threshold,
        drifted=score >= threshold,
        kind="numeric",
        out_of_range=out_of_range(reference, current),
    )


def chi_square_result(
    reference: ColumnReference,
    current: CurrentColumn,
    threshold: float,
    kind: Kind | None = None,
) -> DriftResult:
    """Chi-square over the union of values; drift when p < threshold (``chisquare_stattest.py``).

    Expected counts are the reference counts scaled to the current size; a value unseen
    in the reference makes the statistic infinite and p = 0, as in Evidently. The same
    single value on both sides gives p = 1 (SciPy, with no degree of freedom, gives NaN;
    the verdict, no drift, is the same).
    """
    counts = align_values(reference.values, reference.counts, *current.distinct)
    statistic, p_value = 0.0, 1.0
    if len(counts.keys) > 1:
        statistic_array, p_array = st.chi_square(counts.reference, counts.current)
        statistic, p_value = float(statistic_array), float(p_array)
    return result(
        "chisquare",
        reference,
        current,
        score=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=p_value < threshold,
        kind=kind,
        unseen=(counts.unseen, counts.unseen_rows),
    )


def z_test_result(
    reference: ColumnReference,
    current: CurrentColumn,
    threshold: float,
    kind: Kind | None = None,
) -> DriftResult:
    """Two-proportion Z-test; drift when p < threshold (``z_stattest.py``).

    As in Evidently, the smallest value of the union is coded 0 and every other value 1,
    and the same single value on both sides gives p = 1.
    """
    counts = align_values(reference.values, reference.counts, *current.distinct)
    if reference.distinct == 1 and len(counts.keys) == 1:
        z, p_value = 0.0, 1.0
    else:
        first = _smallest(counts.keys)
        is_first = np.array([key == first for key in counts.keys.tolist()], dtype=bool)
        ref_ones = reference.n - counts.reference[is_first].sum()
        cur_ones = current.n - counts.current[is_first].sum()
        z_array, p_array = st.two_proportion_z(ref_ones, reference.n, cur_ones, current.n)
        z, p_value = float(z_array), float(p_array)
    return result(
        "z",
        reference,
        current,
        score=z,
        p_value=p_value,
        threshold=threshold,
        drifted=p_value < threshold,
        kind=kind,
        unseen=(counts.unseen, counts.unseen_rows),
    )


def _smallest(keys: np.ndarray) -> Any:
    values = keys.tolist()
    try:
        return min(values)
    except TypeError:  # values of mixed types: order by type name, then text
        return min(values, key=lambda key: (type(key).__name__, str(key)))


class KSDetector(ThresholdDetector):
    """Two-sample Kolmogorov–Smirnov on numeric columns; drift when p ≤ ``threshold`` (0.05)."""

    method = "ks"
    default_threshold = 0.05

    def applies_to(self, column: ColumnReference) -> bool:
        return column.representation == "numeric"

    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        return ks_result(reference, current, self.threshold)


class WassersteinDetector(ThresholdDetector):
    """Wasserstein distance / reference std on numeric columns; drift when ≥ ``threshold`` (0.1)."""

    method = "wasserstein"
    default_threshold = 0.1

    def applies_to(self, column: ColumnReference) -> bool:
        return column.representation == "numeric"

    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        return wasserstein_result(reference, current, self.threshold)


class ChiSquareDetector(ThresholdDetector):
    """Chi-square test on discrete columns; drift when p < ``threshold`` (0.05)."""

    method = "chisquare"
    default_threshold = 0.05

    def applies_to(self, column: ColumnReference) -> bool:
        return column.discrete

    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        return chi_square_result(reference, current, self.threshold)


class ZTestDetector(ThresholdDetector):
    """Two-proportion Z-test on discrete (ideally binary) columns; drift when p < ``threshold``."""

    method = "z"
    default_threshold = 0.05

    def applies_to(self, column: ColumnReference) -> bool:
        return column.discrete

    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        return z_test_result(reference, current, self.threshold)
