"""Calibration: does a predicted probability of 0.8 come true 80 % of the time?

Shipyard measures the *top-label* calibration: for each row, the probability the model
gives its predicted class (its confidence) against whether that prediction was right.
Rows fall into equal-width confidence bins over [0, 1]; the expected calibration error
is the bin-size-weighted mean gap between accuracy and confidence:

    ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|

scikit-learn has no ECE, so it lives here; the reliability diagram in the report is
drawn from the same bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import EvaluationError

__all__ = ["ReliabilityCurve", "expected_calibration_error", "reliability_curve"]


@dataclass(frozen=True, eq=False)
class ReliabilityCurve:
    """Per-bin mean confidence, accuracy and row count (empty bins left out)."""

    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    bins: int

    @property
    def ece(self) -> float:
        """The expected calibration error these bins give."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        gaps = np.abs(self.accuracy - self.confidence)
        return float(np.dot(self.counts, gaps) / total)


def _top_label(
    y_true: Any, scores: np.ndarray, classes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's confidence in its predicted class, and whether that class is right."""
    y = np.asarray(y_true)
    proba = np.asarray(scores, dtype=float)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or len(proba) != len(y):
        raise EvaluationError(
            f"Probabilities of shape {proba.shape} do not match {len(y)} labels.",
            hint="Pass one probability (binary) or one row of probabilities per label.",
        )
    tolerance = 1e-9  # float noise in a normalised row is not a wrong probability
    if np.isnan(proba).any() or (
        proba.size and (proba.min() < -tolerance or proba.max() > 1.0 + tolerance)
    ):
        raise EvaluationError(
            "Probabilities must lie in [0, 1].",
            hint="Pass predict_proba output, not decision-function scores.",
        )
    proba = np.clip(proba, 0.0, 1.0)
    if classes is None:
        classes = np.arange(proba.shape[1])
    if len(classes) != proba.shape[1]:
        raise EvaluationError(
            f"{len(classes)} classes but {proba.shape[1]} probability columns.",
            hint="Pass the model's classes_ in predict_proba column order.",
        )
    predicted = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), predicted]
    correct = np.asarray(classes)[predicted] == y
    return confidence, correct


def reliability_curve(
    y_true: Any, scores: np.ndarray, classes: np.ndarray | None = None, *, bins: int = 10
) -> ReliabilityCurve:
    """Top-label reliability bins of ``scores`` against ``y_true``.

    ``scores`` is the 1-D probability of ``classes[1]`` (binary) or the 2-D probability
    matrix with columns in ``classes`` order; ``classes`` defaults to ``0 … k-1``.
    """
    if bins < 1:
        raise EvaluationError(f"bins must be at least 1, not {bins}.", hint="Use e.g. 10.")
    confidence, correct = _top_label(y_true, scores, classes)
    # Equal-width bins over [0, 1]; a confidence of exactly 1 belongs to the last bin.
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    confidence_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct.astype(float), minlength=bins)
    filled = counts > 0
    return ReliabilityCurve(
        confidence=confidence_sum[filled] / counts[filled],
        accuracy=correct_sum[filled] / counts[filled],
        counts=counts[filled],
        bins=bins,
    )


def expected_calibration_error(
    y_true: Any, scores: np.ndarray, classes: np.ndarray | None = None, *, bins: int = 10
) -> float:
    """Top-label expected calibration error in [0, 1]; ``nan`` on no rows."""
    return reliability_curve(y_true, scores, classes, bins=bins).ece
