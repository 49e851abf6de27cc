"""A monitor run's model outputs: prediction drift, labelled performance and the estimate.

:func:`score_outputs` fills the parts of a :class:`MonitorResult` that rest on what the
model answered rather than on its inputs: the outputs' drift against the reference
predictions, the scorecard's metrics on the performance window (with label coverage,
lag, arrival and when enough labels are expected), and CBPE's label-free estimate.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.monitoring.label_window import LabelWindow
from shipyard.monitoring.log_window import LogWindow
from shipyard.monitoring.references import ReferenceSet, score_of
from shipyard.monitoring.results import MonitorResult

if TYPE_CHECKING:
    from shipyard.config import Config, MetricCriterion
    from shipyard.models.served import ServedModel

__all__ = ["score_outputs"]


def score_outputs(
    result: MonitorResult,
    model: ServedModel,
    reference: ReferenceSet,
    current: LogWindow,
    labels: LabelWindow,
    config: Config,
) -> None:
    """Set ``result``'s prediction drift, performance on the labelled window and estimate."""
    from shipyard.monitoring.prediction_drift import PredictionDriftBand

    scores = _scores(current.outputs, current.probabilities, model)
    ref_scores, cur_scores = reference.scores, scores
    multi = model.classes is not None and len(model.classes) > 2
    if multi and current.probabilities is not None and reference.probabilities is not None:
        # Per-class distances: a max-probability score would miss two classes swapping.
        ref_scores, cur_scores = reference.probabilities, current.probabilities
    if ref_scores is not None and cur_scores is not None and len(cur_scores):
        drift = PredictionDriftBand(window_size=len(cur_scores)).fit(ref_scores).score(cur_scores)
        result.prediction = {
            "method": drift.method,
            "score": drift.score,
            "bands": asdict(drift.bands),
            "level": drift.level,
            "n_reference": drift.n_reference,
        }
    result.performance = _performance(model, labels, current, config, result.created_at)
    estimate = _estimate(model, reference, current, scores, current.labelled)
    if estimate is not None:
        result.estimated = estimate


def _scores(
    outputs: list[Any], probabilities: np.ndarray | None, model: ServedModel
) -> np.ndarray | None:
    """One score per row: P(positive) for binary classifiers, else the value."""
    if probabilities is not None:
        return score_of(outputs, probabilities)
    if model.classes is not None:
        return None  # a classifier without probabilities: labels are not a distribution
    try:
        return np.asarray(outputs, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _rows(values: list[Any], mask: np.ndarray) -> np.ndarray:
    """The masked rows of a list of JSON values, as an array (numbers stay numbers)."""
    chosen = [value for value, keep in zip(values, mask, strict=True) if keep]
    return np.asarray(chosen)


def _performance(
    model: ServedModel,
    labels: LabelWindow,
    current: LogWindow,
    config: Config,
    now: datetime,
) -> dict[str, Any]:
    """Metrics on the performance window, label coverage, lag and arrival, and when
    enough labels are expected if there are too few (``labelled`` < ``needed``)."""
    from shipyard.monitoring.performance import (
        concept_drift,
        label_arrival,
        label_coverage,
        label_lag,
        labels_expected,
    )

    spec, needed = labels.spec, config.monitoring.min_labelled
    listed = _criteria(config)
    values: dict[str, float] = {}
    if labels.rows:
        values = _metrics(model, labels, [c.metric for c in listed], config)
    feature_window = label_coverage(current.rows, int(current.labelled.sum()))
    arrival = label_arrival(
        labels.label_times, now=now, start=spec.start, last_at=labels.last_arrival
    )
    expected = labels_expected(labels.rows, needed, arrival, capacity=spec.count, span=spec.span)
    return {
        "window": spec.describe(),
        "metrics": {k: (None if np.isnan(v) else float(v)) for k, v in values.items()},
        "labelled": labels.rows,
        "needed": needed,
        "status": "measured" if labels.rows >= needed else "unknown",
        "coverage": feature_window.to_dict()["share"],  # of the feature window
        "feature_window": feature_window.to_dict(),
        "performance_window": label_coverage(labels.spanned, labels.rows).to_dict(),
        "lag_seconds": label_lag(labels.times, labels.label_times).to_dict(),
        "arrival": arrival.to_dict(),
        "labelled_ever": labels.total,
        "expected": expected.to_dict(),
        "breaches": [
            {**b.to_dict(), "method": "scorecard", "bands": None}
            for b in concept_drift(values, listed)
        ],
    }


def _criteria(config: Config) -> list[MetricCriterion]:
    """The scorecard's criteria without a slice (a window is one slice), or defaults."""
    from shipyard.config import MetricCriterion
    from shipyard.errors import ShipyardError
    from shipyard.evaluation.evaluate import load_scorecard

    try:
        scorecard = load_scorecard(config)
    except ShipyardError:
        scorecard = None
    listed = ([scorecard.primary] if scorecard and scorecard.primary else []) + (
        list(scorecard.metrics) if scorecard else []
    )
    unsliced = [c for c in listed if c.slice is None]
    if unsliced:
        return unsliced
    task = config.model.task
    names = ["accuracy", "roc_auc"] if task == "classification" else ["rmse", "mae"]
    return [MetricCriterion.model_validate({"metric": name}) for name in names]


def _metrics(
    model: ServedModel, labels: LabelWindow, names: list[str], config: Config
) -> dict[str, float]:
    """The named metrics on the labelled window, as the scorecard computes them."""
    from shipyard.monitoring.performance import labelled_performance

    scores = _scores(labels.outputs, labels.probabilities, model)
    y_score = None
    if scores is not None and labels.probabilities is not None and model.classes is not None:
        y_score = scores if len(model.classes) == 2 else labels.probabilities
    return labelled_performance(
        np.asarray(labels.labels),
        np.asarray(labels.outputs),
        y_score,
        list(dict.fromkeys(names)),
        config.model.require_classical(),
        classes=model.classes,
    )


def _estimate(
    model: ServedModel,
    reference: ReferenceSet,
    current: LogWindow,
    scores: np.ndarray | None,
    labelled: np.ndarray,
) -> dict[str, Any] | None:
    """CBPE for binary classifiers with probabilities, fitted on the reference predictions."""
    from shipyard.monitoring.estimation import CBPE

    classes = model.classes
    if (
        classes is None
        or len(classes) != 2
        or scores is None
        or reference.scores is None
        or reference.labels is None
    ):
        return None
    positive = classes[1]
    cbpe = CBPE().fit(np.asarray(reference.labels) == positive, reference.scores)
    estimates = cbpe.estimate(scores)
    found: dict[str, Any] = {name: e.to_dict() for name, e in estimates.items()}
    if labelled.any():
        truth = _rows(current.labels, labelled)
        realised = cbpe.realised(truth == positive, scores[labelled])
        for name, value in realised.items():
            if name in found:
                found[name]["realised"] = None if np.isnan(value) else float(value)
    return found
