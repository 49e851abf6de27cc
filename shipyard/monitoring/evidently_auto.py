"""``method="auto"``: Evidently 0.7's default drift tests, so migrating teams get the same verdicts.

Reproduces ``DataDriftPreset()`` of Evidently 0.7.23 column by column:

- column type from the *current* data (``evidently/core/datasets.py``,
  ``infer_column_type``; see :func:`~shipyard.monitoring.frames.evidently_kind`);
- NaN and ±inf dropped from both sides first (``legacy/calculations/data_drift.py``,
  ``get_one_column_drift``), reference size counted after that, distinct values over
  reference ∪ current;
- the test (``legacy/calculations/stattests/registry.py``, ``_get_default_stattest``):

  ============================  =====================  ==========================
  reference rows (cleaned)      numeric, > 5 distinct  otherwise
  ============================  =====================  ==========================
  ≤ 1000                        KS, drift if p ≤ 0.05  chi-square (> 2 distinct) or
                                                       Z-test, drift if p < 0.05
  > 1000                        Wasserstein / std,     Jensen–Shannon distance on
                                drift if ≥ 0.1         value shares, drift if ≥ 0.1
  ============================  =====================  ==========================

- dataset drift when at least ``drift_share`` (0.5) of the columns drift
  (``legacy/calculations/data_drift.py``, ``get_dataset_drift``).

Where Shipyard differs: text columns (strings, more than half distinct) get
Evidently's classifier-based text test there; here they are skipped and listed in
``DatasetDrift.skipped``, so they do not count in the share. Nullable dtypes are typed
like their NumPy counterparts instead of being skipped. A column with no finite values
on a side is reported without a score instead of raising.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from shipyard.monitoring import statistics as st
from shipyard.monitoring.base import DriftDetector, missing_values, result, unscored
from shipyard.monitoring.binning import align_values
from shipyard.monitoring.detectors import (
    chi_square_result,
    ks_result,
    wasserstein_result,
    z_test_result,
)
from shipyard.monitoring.frames import EvidentlyKind, evidently_kind
from shipyard.monitoring.reference import ColumnReference
from shipyard.monitoring.results import DriftResult, Kind
from shipyard.monitoring.window import CurrentColumn

__all__ = [
    "SMALL_REFERENCE_ROWS",
    "AutoDriftDetector",
    "choose_test",
    "jensen_shannon_result",
    "untestable_reason",
]

SMALL_REFERENCE_ROWS = 1000
_FEW_DISTINCT = 5


def choose_test(kind: EvidentlyKind, reference_rows: int, distinct: int) -> tuple[str, float]:
    """Evidently 0.7's default test for a column, and its threshold.

    ``reference_rows`` counts finite reference values, ``distinct`` the distinct values
    of reference and current together.
    """
    numeric_many = kind == "numerical" and distinct > _FEW_DISTINCT
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if numeric_many:
            return "ks", 0.05
        return ("chisquare", 0.05) if distinct > 2 else ("z", 0.05)
    return ("wasserstein", 0.1) if numeric_many else ("jensenshannon", 0.1)


class AutoDriftDetector(DriftDetector):
    """Per column, the test Evidently 0.7 would choose, with its threshold."""

    method = "auto"

    @property
    def threshold(self) -> float:
        """Not one number: each result carries the threshold of its own test."""
        return float("nan")

    def _score(
        self, frame: pd.DataFrame, window: Iterator[CurrentColumn]
    ) -> tuple[list[DriftResult], dict[str, str]]:
        results: list[DriftResult] = []
        skipped: dict[str, str] = {}
        for current in window:  # one column's arrays at a time
            name = current.name
            reference = self.reference_[name]
            kind = evidently_kind(frame[name])
            reason = untestable_reason(kind, reference)
            if reason:
                skipped[name] = reason
                continue
            tested_as: Kind = "numeric" if kind == "numerical" else "categorical"
            test, threshold = choose_test(kind, reference.n, _distinct(reference, current))
            note = missing_values(reference, current)
            if note:
                results.append(unscored(test, reference, current, threshold, note))
            else:
                results.append(_run(test, reference, current, threshold, tested_as))
        return results, skipped

    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        raise NotImplementedError  # the test depends on the current column's dtype: see _score


def untestable_reason(kind: EvidentlyKind, reference: ColumnReference) -> str | None:
    """Why Evidently's auto mode skips a column of ``kind``; None when it tests it."""
    if kind == "text":
        return (
            "text column (over half its values distinct): Evidently's text test is not reproduced"
        )
    if kind in ("datetime", "unknown"):
        return f"{kind} column: Evidently does not test it for drift"
    if kind == "numerical" and reference.representation != "numeric":
        return "the reference holds categories but the current window holds numbers"
    return None


def _distinct(reference: ColumnReference, current: CurrentColumn) -> int:
    """Distinct finite values of both sides together (exact up to 6, enough to choose)."""
    if reference.distinct > _FEW_DISTINCT:
        return reference.distinct
    values, counts = current.distinct
    if len(values) > _FEW_DISTINCT:
        return len(values)
    return len(align_values(reference.values, reference.counts, values, counts).keys)


def _run(
    test: str, reference: ColumnReference, current: CurrentColumn, threshold: float, kind: Kind
) -> DriftResult:
    if test == "ks":
        return ks_result(reference, current, threshold)
    if test == "wasserstein":
        return wasserstein_result(reference, current, threshold)
    if test == "chisquare":
        return chi_square_result(reference, current, threshold, kind)
    if test == "z":
        return z_test_result(reference, current, threshold, kind)
    return jensen_shannon_result(reference, current, threshold, kind)


def jensen_shannon_result(
    reference: ColumnReference, current: CurrentColumn, threshold: float, kind: Kind
) -> DriftResult:
    """Jensen–Shannon distance on value shares, empty bins left empty (jensenshannon.py)."""
    counts = align_values(reference.values, reference.counts, *current.distinct)
    score = float(st.jensen_shannon_distance(counts.reference, counts.current))
    return result(
        "jensenshannon",
        reference,
        current,
        score=score,
        threshold=threshold,
        drifted=score >= threshold,
        kind=kind,
        unseen=(counts.unseen, counts.unseen_rows),
    )
