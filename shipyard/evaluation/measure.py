"""Measuring a model on a golden set: every number a scorecard or the report needs.

Predictions are made once; slices and fairness groups are boolean masks over them, so
scoring a slice costs a metric call, not another predict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.config import MetricCriterion, Scorecard, SliceSpec
from shipyard.errors import EvaluationError
from shipyard.evaluation.calibration import expected_calibration_error
from shipyard.evaluation.latency import LatencyMeasurement, measure_latency
from shipyard.evaluation.metrics import Task, compute_metric, resolve_metric
from shipyard.evaluation.predictions import Predictions, model_inputs, predict
from shipyard.evaluation.slices import (
    FairnessMeasurement,
    SliceMeasurement,
    fairness_groups,
    slice_mask,
)

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.models.loading import LoadedModel

__all__ = ["STANDARD_METRICS", "Measurements", "measure"]

# Always measured, for the report; probability metrics only when the model has them.
STANDARD_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "roc_auc", "pr_auc", "log_loss", "ece"),
    "regression": ("rmse", "mae", "r2"),
}
DEFAULT_ECE_BINS = 10
BYTES_PER_MB = 1_000_000


@dataclass(frozen=True, eq=False)
class Measurements:
    """One model measured on one golden set.

    ``metrics`` are on every row, ``slices`` map a slice label to the metrics the
    scorecard asks for on it, ``fairness`` maps ``"<metric> gap across <column>"`` to the
    per-group values. ``y_true`` and ``predictions`` are kept for the report's curves;
    :meth:`to_dict` leaves them out. An undefined metric is ``nan`` here and ``None``
    in :meth:`to_dict`.
    """

    task: Task
    target: str
    rows: int
    flavour: str
    primary: str | None
    metrics: dict[str, float]
    slices: dict[str, SliceMeasurement]
    fairness: dict[str, FairnessMeasurement]
    latency: LatencyMeasurement | None
    load_seconds: float
    size_mb: float
    y_true: np.ndarray
    predictions: Predictions
    ece_bins: int = DEFAULT_ECE_BINS

    def value(self, metric: str, slice_label: str | None = None) -> float | None:
        """A measured metric overall or on a slice; ``None`` if absent or undefined."""
        if slice_label is None:
            found = self.metrics.get(metric)
        else:
            part = self.slices.get(slice_label)
            found = part.metrics.get(metric) if part is not None else None
        return _finite(found)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary: no raw arrays, ``None`` for undefined values."""
        return {
            "task": self.task,
            "target": self.target,
            "rows": self.rows,
            "flavour": self.flavour,
            "primary": self.primary,
            "metrics": {name: _finite(value) for name, value in self.metrics.items()},
            "slices": {
                label: {
                    "rows": part.rows,
                    "metrics": {name: _finite(value) for name, value in part.metrics.items()},
                }
                for label, part in self.slices.items()
            },
            "fairness": {
                name: {
                    "metric": part.metric,
                    "column": part.column,
                    "gap": part.gap,
                    "groups": dict(part.groups),
                    "rows": dict(part.rows),
                    "ignored": dict(part.ignored),
                }
                for name, part in self.fairness.items()
            },
            "latency": self.latency.to_dict() if self.latency is not None else None,
            "load_seconds": self.load_seconds,
            "size_mb": self.size_mb,
            "ece_bins": self.ece_bins,
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def measure(
    loaded: LoadedModel,
    frame: pd.DataFrame,
    *,
    target: str,
    scorecard: Scorecard,
    task: Task,
) -> Measurements:
    """Predict ``frame`` once and measure everything ``scorecard`` and the report need."""
    y_true = _labels(frame, target, task)
    wanted = _wanted_metrics(scorecard, task)
    if task == "regression" and scorecard.calibration is not None:
        raise EvaluationError(
            "The scorecard has a calibration criterion, which applies to classifiers only.",
            hint="Remove calibration from the scorecard of a regression model.",
        )
    # Slices first: a bad query should fail before the (slower) predict.
    masks = {label: slice_mask(frame, spec) for label, (spec, _) in wanted.items() if spec}
    features = model_inputs(loaded, frame.drop(columns=[target]))
    try:
        predictions = predict(loaded, features)
    except EvaluationError:
        raise
    except Exception as exc:
        raise EvaluationError(
            f"The model failed to predict the golden set: {type(exc).__name__}: {exc}",
            hint="Check that the golden set has the columns and types the model was trained on.",
        ) from exc
    if task == "regression":
        predictions = Predictions(_as_float(predictions.labels, "The model's predictions"))
    else:
        _check_classes(y_true, predictions)
        if scorecard.calibration is not None and predictions.scores is None:
            raise EvaluationError(
                "The scorecard has a calibration criterion, and the model has no predict_proba.",
                hint="Remove calibration from the scorecard, or log a classifier with "
                "predict_proba.",
            )
    bins = scorecard.calibration.bins if scorecard.calibration else DEFAULT_ECE_BINS

    def score(names: list[str], rows: np.ndarray | None) -> dict[str, float]:
        y = y_true if rows is None else y_true[rows]
        part = predictions if rows is None else predictions.subset(rows)
        values = {}
        for name in names:
            if name == "ece" and part.scores is not None:
                values[name] = expected_calibration_error(y, part.scores, part.classes, bins=bins)
            else:
                values[name] = compute_metric(name, y, part, task=task)
        return values

    standard = [
        name
        for name in STANDARD_METRICS[task]
        if predictions.scores is not None or not resolve_metric(name).needs_probabilities
    ]
    overall = list(dict.fromkeys([*standard, *wanted.get("", (None, []))[1]]))
    slices = {
        label: SliceMeasurement(label, int(masks[label].sum()), score(names, masks[label]))
        for label, (spec, names) in wanted.items()
        if spec is not None
    }
    fairness = {}
    for criterion in scorecard.fairness:
        part = fairness_groups(frame, criterion, y_true, predictions, task)
        fairness[part.name] = part
    latency = None
    if scorecard.latency is not None:
        latency = measure_latency(
            loaded,
            features,
            batch_size=scorecard.latency.batch_size,
            repeats=scorecard.latency.repeats,
        )
    metadata = loaded.metadata
    return Measurements(
        task=task,
        target=target,
        rows=len(frame),
        flavour=metadata.flavour,
        primary=scorecard.primary.metric if scorecard.primary else None,
        metrics=score(overall, None),
        slices=slices,
        fairness=fairness,
        latency=latency,
        load_seconds=metadata.load_seconds,
        size_mb=metadata.size_bytes / BYTES_PER_MB,
        y_true=y_true,
        predictions=predictions,
        ece_bins=bins,
    )


def _labels(frame: pd.DataFrame, target: str, task: Task) -> np.ndarray:
    if target not in frame.columns:
        raise EvaluationError(
            f"The golden set has no target column {target!r}.",
            hint="Evaluate on data that holds the label column the model was trained for "
            "(train.target in shipyard.yaml).",
        )
    if frame.empty:
        raise EvaluationError("The golden set has no rows.", hint="Evaluate on labelled rows.")
    column = frame[target]
    missing = int(column.isna().sum())
    if missing:
        raise EvaluationError(
            f"The target column {target!r} has {missing} missing values.",
            hint="A golden set holds labelled rows only: drop or label these rows.",
        )
    if task == "regression":
        return _as_float(column.to_numpy(), f"The target column {target!r}")
    return column.to_numpy()


def _as_float(values: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise EvaluationError(
            f"{what} is not numeric, as a regression needs.",
            hint="Set model.task to classification in shipyard.yaml if the model predicts classes.",
        ) from None


def _check_classes(y_true: np.ndarray, predictions: Predictions) -> None:
    if predictions.classes is None:
        return
    unknown = ~np.isin(y_true, predictions.classes)
    if unknown.any():
        shown = ", ".join(repr(v) for v in np.unique(y_true[unknown].astype(str))[:5])
        known = ", ".join(repr(v) for v in predictions.classes.astype(str)[:10])
        raise EvaluationError(
            f"{int(unknown.sum())} target values are classes the model does not know: {shown}.",
            hint=f"The model predicts {known}; check that the golden set's target is "
            "encoded as in training.",
        )


def _wanted_metrics(
    scorecard: Scorecard, task: Task
) -> dict[str, tuple[SliceSpec | None, list[str]]]:
    """Metric names per slice label ("" for all rows), each checked against ``task``."""
    wanted: dict[str, tuple[SliceSpec | None, list[str]]] = {}
    criteria: list[MetricCriterion] = [
        *([scorecard.primary] if scorecard.primary else []),
        *scorecard.metrics,
    ]
    for criterion in criteria:
        resolve_metric(criterion.metric, task)
        spec = criterion.slice
        label = spec.label if spec is not None else ""
        names = wanted.setdefault(label, (spec, []))[1]
        if criterion.metric not in names:
            names.append(criterion.metric)
    for fairness in scorecard.fairness:
        resolve_metric(fairness.metric, task)
    return wanted
